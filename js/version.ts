/**
 * The front end and the kernel must speak the same protocol version: a stale JS bundle (an old
 * build, or a package upgraded without rebuilding) would otherwise send messages the kernel
 * refuses or misreads. On a mismatch the widget shows only a banner saying how to fix it.
 */
import { PROTOCOL_VERSION } from "./protocol";

/** Why this front end cannot talk to a kernel publishing `kernelVersion`, or null when it can. */
export function protocolMismatch(kernelVersion: unknown): string | null {
  if (kernelVersion === PROTOCOL_VERSION) return null;
  const kernel = typeof kernelVersion === "number" ? `protocol ${kernelVersion}` : "an unknown protocol";
  return `The annotator's front end speaks protocol ${PROTOCOL_VERSION}, but the kernel's manet_widget speaks ${kernel}: ` +
    "the JavaScript bundle and the Python package come from different versions. Rebuild the front end from the " +
    "source tree with `bash scripts/setup.sh` (or reinstall the package: `pip install --force-reinstall " +
    "manet-jupyter`), then restart the kernel and reload this page.";
}

/** Replace the widget's content with the mismatch banner. */
export function renderMismatch(el: HTMLElement, message: string): void {
  const banner = document.createElement("div");
  banner.className = "manet-annotator manet-version-mismatch";
  banner.setAttribute("role", "alert");
  banner.textContent = message;
  el.replaceChildren(banner);
}
