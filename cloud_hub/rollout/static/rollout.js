// A campaign page follows its campaign while it moves: every few seconds it fetches the same
// server-rendered page and swaps in the [data-refresh] part. It stops once the campaign has ended.
(() => {
  "use strict";
  const root = document.querySelector("[data-refresh]");
  if (!root) return;
  const tick = async () => {
    if (root.dataset.refresh === "0") return;
    try {
      const response = await fetch(location.href, { headers: { Accept: "text/html" }, credentials: "same-origin" });
      if (response.ok) {
        const fresh = new DOMParser().parseFromString(await response.text(), "text/html").querySelector("[data-refresh]");
        if (fresh) {
          root.replaceChildren(...Array.from(fresh.childNodes, (node) => document.importNode(node, true)));
          root.dataset.refresh = fresh.dataset.refresh;
        }
      }
    } catch (err) {
      // offline for a moment: try again on the next tick
    }
    if (root.dataset.refresh !== "0") setTimeout(tick, Number(root.dataset.refresh) * 1000);
  };
  setTimeout(tick, Number(root.dataset.refresh) * 1000);
})();
