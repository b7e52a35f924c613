// Render Altair's JupyterChart front end (its offline bundle) in Node with a stub DOM and a fake
// anywidget model, apply the kernel's `_py_to_js_updates`, and report what the Vega view holds.
// Usage: node render_widget.mjs <bundle.mjs> <state.json> <updates.json>
// The state's spec carries a `probe` param whose expression reads the named dataset and the x scale;
// the widget reports params back through the model, which is how we observe the view.
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

function element(tag) {
  return {
    tagName: tag, children: [], childNodes: [], parentNode: null, ownerDocument: null, style: {}, attributes: {}, dataset: {}, innerHTML: "", textContent: "",
    classList: { add() {}, remove() {}, contains() { return false; }, toggle() {} },
    appendChild(c) { this.children.push(c); return c; }, append() {}, prepend() {},
    insertBefore(c) { return c; }, removeChild(c) { return c; },
    setAttribute(k, v) { this.attributes[k] = v; }, getAttribute(k) { return this.attributes[k]; },
    removeAttribute() {}, addEventListener() {}, removeEventListener() {},
    querySelector() { return null; }, querySelectorAll() { return []; },
    getBoundingClientRect() { return { left: 0, top: 0, width: 600, height: 300 }; },
    get firstChild() { return this.children[0] ?? null; }, get lastChild() { return this.children.at(-1) ?? null; },
  };
}
Object.assign(globalThis, {
  window: globalThis, ShadowRoot: class {}, HTMLElement: class {}, Element: class {}, Node: class {},
  getComputedStyle: () => ({ getPropertyValue: () => "" }),
  document: { createElement: element, createElementNS: (_, t) => element(t), head: element("head"),
              body: element("body"), documentElement: element("html"),
              querySelector: () => null, getElementById: () => null },
});

const [bundle, statePath, updatesPath] = process.argv.slice(2);
const widget = await import(pathToFileURL(bundle).href);
const state = JSON.parse(readFileSync(statePath, "utf8"));
const updates = JSON.parse(readFileSync(updatesPath, "utf8"));
const listeners = {};
const model = {
  get: (k) => state[k], set: (k, v) => { state[k] = v; }, save_changes() {},
  on(event, fn) { (listeners[event] ??= []).push(fn); },
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const el = element("div");
await widget.default.render({ model, el });
await sleep(50);
const report = { error: el.innerHTML, before: state._params.probe };
state._py_to_js_updates = updates;
for (const fn of listeners["change:_py_to_js_updates"] ?? []) await fn({ changed: { _py_to_js_updates: updates } });
await sleep(50);
report.after = state._params.probe;
console.log(JSON.stringify(report));
