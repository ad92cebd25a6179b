/** anywidget entry point of `manet_widget.Annotator`. */
import type { AnyWidget, RenderProps } from "@anywidget/types";
import type { Traits } from "./traits";
import { protocolMismatch, renderMismatch } from "./version";
import { AnnotatorView } from "./view";

interface DebugHandle {
  manetView?: AnnotatorView;
}

export function render({ model, el }: RenderProps<Traits>): () => void {
  const mismatch = protocolMismatch(model.get("protocol_version"));
  if (mismatch !== null) {
    // Nothing else is built: a view speaking another protocol must not send a single message.
    renderMismatch(el, mismatch);
    return () => undefined;
  }
  const view = new AnnotatorView(model, el);
  // Handle for the browser tests and the latency benchmark (stats, state); not an API.
  (view.ui.root as HTMLElement & DebugHandle).manetView = view;
  return () => view.dispose();
}

const widget: AnyWidget<Traits> = { render };
export default widget;
