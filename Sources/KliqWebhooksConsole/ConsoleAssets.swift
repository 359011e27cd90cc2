/// The console's stylesheet and script, served from `/assets/` (the Content-Security-Policy allows
/// scripts and styles from the console's own origin only: nothing inline, nothing from elsewhere).
enum ConsoleAssets {
    static let css = #"""
    body { font: 15px/1.45 system-ui, sans-serif; margin: 0; color: #1d2330; background: #f7f8fa; }
    header { display: flex; gap: 2em; align-items: baseline; padding: .8em 1.5em; background: #1d2330; color: #fff; }
    header nav a { color: #cfe0ff; margin-right: 1.2em; text-decoration: none; }
    main { padding: 1em 1.5em 3em; max-width: 1200px; }
    table { border-collapse: collapse; background: #fff; margin: .5em 0 1em; }
    th, td { text-align: left; padding: .35em .8em; border-bottom: 1px solid #e3e6eb; vertical-align: top; }
    .stats td { font-size: 1.4em; font-variant-numeric: tabular-nums; min-width: 5em; }
    .filters { display: flex; flex-wrap: wrap; gap: .8em; align-items: end; margin: .5em 0 1em; }
    .filters label { display: flex; flex-direction: column; font-size: .85em; }
    .state, .status { padding: 0 .4em; border-radius: 3px; background: #e8ecf3; font-size: .9em; }
    .succeeded, .completed { background: #dcf3e2; } .dead, .failed { background: #fbdcdc; } .retrying { background: #fff0c9; }
    pre.body, pre { background: #fff; border: 1px solid #e3e6eb; padding: 1em; overflow: auto; max-height: 40em; }
    .timeline li.failure, .timeline li.dead { color: #8a1f1f; }
    .muted { color: #69707d; } .error { color: #8a1f1f; }
    svg.frame { width: 100%; max-width: 640px; max-height: 60vh; background: #eef1f6; border: 1px solid #c9ced8; }
    svg.frame .frame-border { fill: none; stroke: #c9ced8; }
    svg.frame rect.detection { fill: rgba(47, 111, 235, .12); stroke: #2f6feb; stroke-width: 2; vector-effect: non-scaling-stroke; }
    svg.frame text.label { fill: #123a8a; font-size: 14px; paint-order: stroke; stroke: #fff; stroke-width: 3px; }
    button { font: inherit; padding: .3em .9em; }
    """#

    static let js = #"""
    "use strict";
    (function () {
      const csrf = document.querySelector('meta[name="csrf-token"]').content;
      async function post(url, body) {
        const response = await fetch(url, {
          method: "POST", credentials: "same-origin",
          headers: Object.assign({ "X-CSRF-Token": csrf }, body ? { "Content-Type": "application/json" } : {}),
          body: body ? JSON.stringify(body) : undefined,
        });
        return { status: response.status, json: await response.json().catch(() => ({})) };
      }
      // Overview: counters every 5 s, without a reload (text only: nothing from the API becomes markup).
      if (document.querySelector("[data-stat]")) {
        setInterval(async function () {
          const response = await fetch("/api/stats", { credentials: "same-origin" });
          if (!response.ok) return;
          const stats = await response.json();
          for (const cell of document.querySelectorAll("[data-stat]")) {
            const target = cell.querySelector("a") || cell;
            target.textContent = String(stats[cell.dataset.stat]);
          }
          const refused = document.getElementById("refused");
          refused.replaceChildren(...Object.keys(stats.refused).sort().map(function (code) {
            const row = document.createElement("tr"), th = document.createElement("th"), td = document.createElement("td");
            th.textContent = code; td.textContent = String(stats.refused[code]); row.append(th, td); return row;
          }));
        }, 5000);
      }
      for (const button of document.querySelectorAll("[data-redrive]")) {
        button.addEventListener("click", async function () {
          const result = await post(button.dataset.redrive);
          button.nextElementSibling.textContent = result.status === 200 ? "Re-driven: its handlers run again." : (result.json.message || "Refused (" + result.status + ")");
          if (result.status === 200) setTimeout(function () { location.reload(); }, 1500);
        });
      }
      for (const button of document.querySelectorAll("[data-bulk-redrive]")) {
        button.addEventListener("click", async function () {
          const expected = Number(button.dataset.expected);
          if (!confirm("Re-drive " + expected + " dead event" + (expected === 1 ? "" : "s") + "? Their handlers run again.")) return;
          const result = await post("/api/redrive", { filter: JSON.parse(button.dataset.filter), expected: expected });
          const output = button.nextElementSibling;
          if (result.status === 200) { output.textContent = "Re-driven: " + result.json.redriven + "."; setTimeout(function () { location.reload(); }, 1500); }
          else if (result.status === 409) { output.textContent = "The count is now " + result.json.count + ": nothing was re-driven. Reload to see them."; }
          else { output.textContent = result.json.message || "Refused (" + result.status + ")"; }
        });
      }
    })();
    """#
}
