import Hummingbird
import NIOCore

/// StatusPage is the page `GET /` serves: one self-contained HTML document (its CSS and script inline; no
/// CDN, no font or image from elsewhere, so it works offline) that reads `/status` (``StatusDocument``) and
/// shows the banner (URLs per state), the URLs by group with their state, uptime over 24 h / 7 d / 30 d, a
/// 30-day bar of daily uptime and a 24-hour latency line (inline SVG), and the latest changes. It reads
/// `/status` again every 30 seconds. Nothing on it writes anything.
///
/// Every value from `/status` is put in the page as text (`textContent`), never as markup, so a URL or a
/// name cannot inject HTML. Its Content-Security-Policy allows only itself (`default-src 'none'`; inline
/// style and script; `connect-src 'self'`).
public enum StatusPage {
    static func response() -> Response {
        Response(
            status: .ok,
            headers: [
                .contentType: "text/html; charset=utf-8", .cacheControl: "no-store",
                .contentSecurityPolicy:
                    "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; connect-src 'self'; img-src data:",
            ],
            body: .init(byteBuffer: ByteBuffer(string: Self.html)))
    }

    /// The page.
    public static let html = #"""
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>urlpoll</title>
        <style>
          :root { --up: #1a7f37; --degraded: #b08800; --down: #cf222e; --pending: #8c959f; --line: #d0d7de; }
          body { font: 15px/1.4 system-ui, sans-serif; margin: 0 auto; max-width: 960px; padding: 1rem; color: #1f2328; }
          h1 { font-size: 1.5rem; margin: 0 0 .25rem; }
          h2 { font-size: 1.1rem; margin: 1.5rem 0 .5rem; border-bottom: 1px solid var(--line); }
          #banner { margin: .5rem 0 1rem; }
          #banner span { margin-right: 1rem; }
          .url { display: grid; grid-template-columns: 1fr auto; gap: .25rem 1rem; padding: .5rem 0;
                 border-bottom: 1px solid var(--line); }
          .name { font-weight: 600; overflow-wrap: anywhere; }
          .target { color: #59636e; font-size: .85rem; overflow-wrap: anywhere; }
          .state { font-weight: 600; text-align: right; }
          .state.up { color: var(--up); } .state.degraded { color: var(--degraded); }
          .state.down { color: var(--down); } .state.pending { color: var(--pending); }
          .numbers { color: #59636e; font-size: .85rem; }
          .graphs { grid-column: 1 / -1; display: flex; flex-wrap: wrap; gap: 1rem; align-items: end; }
          svg { display: block; }
          .bar-up { fill: var(--up); } .bar-degraded { fill: var(--degraded); } .bar-down { fill: var(--down); }
          .bar-none { fill: #eaeef2; } .latency { fill: none; stroke: #0969da; stroke-width: 1.5; }
          #incidents li { margin: .25rem 0; }
          .when { color: #59636e; font-size: .85rem; }
          @media (max-width: 600px) { .url { grid-template-columns: 1fr; } .state { text-align: left; } }
        </style>
        </head>
        <body>
        <h1 id="title">urlpoll</h1>
        <div id="banner">Loading…</div>
        <main id="groups"></main>
        <h2>Latest changes</h2>
        <ul id="incidents"></ul>
        <p class="when" id="updated"></p>
        <script>
        "use strict";
        function el(tag, cls, text) {
          const e = document.createElement(tag);
          if (cls) e.className = cls;
          if (text !== undefined && text !== null) e.textContent = String(text);
          return e;
        }
        const svgNS = "http://www.w3.org/2000/svg";
        function svg(tag, attrs) {
          const e = document.createElementNS(svgNS, tag);
          for (const k in attrs) e.setAttribute(k, attrs[k]);
          return e;
        }
        function percent(x) { return x === undefined || x === null ? "–" : (x * 100).toFixed(x >= 0.9995 || x === 0 ? 0 : 2) + " %"; }
        function ms(x) { return x === undefined || x === null ? "–" : (x * 1000).toFixed(x < 0.1 ? 1 : 0) + " ms"; }
        function time(t) { return t ? new Date(t * 1000).toLocaleString() : "–"; }
        function span(seconds) {
          const s = Math.max(0, Math.round(seconds));
          if (s < 120) return s + " s";
          if (s < 7200) return Math.round(s / 60) + " min";
          if (s < 172800) return Math.round(s / 3600) + " h";
          return Math.round(s / 86400) + " d";
        }
        // 30 daily bars: colour by the day's uptime; grey where there were no polls.
        function uptimeBars(days, now) {
          const width = 30 * 6, box = svg("svg", { width: width, height: 24, viewBox: "0 0 " + width + " 24",
            role: "img", "aria-label": "uptime per day, last 30 days" });
          const byDay = new Map(days.map(d => [d.start, d]));
          const today = Math.floor(now / 86400) * 86400;
          for (let i = 0; i < 30; i++) {
            const start = today - (29 - i) * 86400, d = byDay.get(start);
            let cls = "bar-none";
            if (d && d.polls > 0) cls = d.uptime >= 0.999 ? "bar-up" : d.uptime >= 0.95 ? "bar-degraded" : "bar-down";
            const r = svg("rect", { x: i * 6, y: 0, width: 5, height: 24, class: cls });
            const title = svg("title", {});
            title.textContent = new Date(start * 1000).toISOString().slice(0, 10) + ": " +
              (d && d.polls > 0 ? percent(d.uptime) + " of " + d.polls + " polls" : "no polls");
            r.appendChild(title);
            box.appendChild(r);
          }
          return box;
        }
        // The 24 hours' p95 latency as a line.
        function latencyLine(hours) {
          const width = 24 * 8, height = 32;
          const box = svg("svg", { width: width, height: height, viewBox: "0 0 " + width + " " + height,
            role: "img", "aria-label": "latency p95 per hour, last 24 hours" });
          const points = hours.filter(h => h.latency_p95 !== undefined && h.latency_p95 !== null);
          if (points.length === 0) return box;
          const max = Math.max(...points.map(h => h.latency_p95)) || 1;
          const last = hours[hours.length - 1].start;
          const xy = points.map(h => {
            const x = width - 4 - ((last - h.start) / 3600) * 8, y = height - 2 - (h.latency_p95 / max) * (height - 4);
            return x.toFixed(1) + "," + y.toFixed(1);
          });
          if (xy.length === 1) {
            const [x, y] = xy[0].split(",");
            box.appendChild(svg("circle", { cx: x, cy: y, r: 2, fill: "#0969da" }));
          } else {
            box.appendChild(svg("polyline", { points: xy.join(" "), class: "latency" }));
          }
          const title = svg("title", {});
          title.textContent = "latency p95 per hour, up to " + ms(max);
          box.appendChild(title);
          return box;
        }
        function render(doc) {
          document.title = doc.title;
          document.getElementById("title").textContent = doc.title;
          const banner = document.getElementById("banner");
          banner.replaceChildren();
          for (const state of ["up", "degraded", "down", "pending"]) {
            if (doc.counts[state]) banner.appendChild(el("span", "state " + state, doc.counts[state] + " " + state));
          }
          const groups = new Map();
          for (const u of doc.urls) {
            const g = u.group || "";
            if (!groups.has(g)) groups.set(g, []);
            groups.get(g).push(u);
          }
          const main = document.getElementById("groups");
          main.replaceChildren();
          const incidents = [];
          for (const [name, urls] of [...groups].sort((a, b) => a[0].localeCompare(b[0]))) {
            const section = el("section", "group");
            section.dataset.group = name;
            if (name || groups.size > 1) section.appendChild(el("h2", null, name || "Other"));
            for (const u of urls) {
              const row = el("div", "url");
              row.dataset.url = u.url;
              row.dataset.state = u.state;
              const left = el("div");
              left.appendChild(el("div", "name", u.name));
              if (u.name !== u.url) left.appendChild(el("div", "target", u.url));
              left.appendChild(el("div", "numbers",
                (u.status ? u.status + " · " : "") + "since " + time(u.since) + (u.since ? " (" + span(doc.generated_at - u.since) + ")" : "") +
                " · uptime 24 h " + percent(u.uptime_1d) + ", 7 d " + percent(u.uptime_7d) +
                ", 30 d " + percent(u.uptime_30d) + " · p95 " + ms(u.latency_p95)));
              row.appendChild(left);
              row.appendChild(el("div", "state " + u.state, u.state));
              if (doc.history) {
                const graphs = el("div", "graphs");
                graphs.appendChild(uptimeBars(u.days, doc.generated_at));
                graphs.appendChild(latencyLine(u.hours));
                row.appendChild(graphs);
              }
              section.appendChild(row);
              for (const c of u.changes) incidents.push({ url: u, change: c });
            }
            main.appendChild(section);
          }
          incidents.sort((a, b) => b.change.at - a.change.at);
          const list = document.getElementById("incidents");
          list.replaceChildren();
          for (const { url, change } of incidents.slice(0, 50)) {
            const li = el("li", "incident");
            li.dataset.url = url.url;
            li.dataset.to = change.to;
            li.appendChild(el("span", "when", time(change.at) + " "));
            li.appendChild(el("strong", null, url.name));
            li.appendChild(document.createTextNode(": " + (change.from ? change.from + " → " : "") + change.to +
              " (" + change.to_status + ")" + (change.detail ? ": " + change.detail : "")));
            list.appendChild(li);
          }
          if (incidents.length === 0) list.appendChild(el("li", "when", doc.history ? "No changes yet." :
            "Changes are kept when urlpoll runs with --data."));
          document.getElementById("updated").textContent = "Updated " + time(doc.generated_at) +
            ". This page reads /status every 30 s.";
        }
        async function refresh() {
          try {
            const response = await fetch("status", { cache: "no-store" });
            if (!response.ok) throw new Error(response.status + " " + (await response.text()));
            render(await response.json());
          } catch (e) {
            document.getElementById("banner").textContent = "Cannot read /status: " + e.message;
          }
        }
        refresh();
        setInterval(refresh, 30000);
        </script>
        </body>
        </html>
        """#
}
