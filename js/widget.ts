/** anywidget entry point of `manet_widget.Annotator`. */
import type { AnyWidget, RenderProps } from "@anywidget/types";
import type { Traits } from "./traits";
import { AnnotatorView } from "./view";

interface DebugHandle {
  manetView?: AnnotatorView;
}

function render({ model, el }: RenderProps<Traits>): () => void {
  const view = new AnnotatorView(model, el);
  // Handle for the browser tests and the latency benchmark (stats, state); not an API.
  (view.ui.root as HTMLElement & DebugHandle).manetView = view;
  return () => view.dispose();
}

const widget: AnyWidget<Traits> = { render };
export default widget;
