"""``index.html``: one self-contained page to browse every video of a highlight run.

No server and nothing fetched from the network: styles, script, data and the timeline images
(as data URIs) are inside the page; the source videos and the reels are referenced by relative
paths from the page's folder, so it opens from disk (``file://``). Per video: the source in a
player, the score timeline under it, the ranked moments as a list (a click seeks the player to the
moment's start and plays), and the reel. Videos that failed are listed with their reason.
"""

from __future__ import annotations

import base64
import html
import json
import os
from pathlib import Path
from urllib.parse import quote

_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:0 auto;max-width:980px;padding:16px;color:#222}
h1{font-size:20px} h2{font-size:16px;margin:0 0 8px}
section.video{border:1px solid #ddd;border-radius:6px;padding:12px;margin:16px 0}
.row{display:flex;gap:16px;flex-wrap:wrap} .col{flex:1 1 420px;min-width:300px}
video{width:100%;max-height:300px;background:#000} img.timeline{width:100%;display:block;margin-top:6px}
ol.moments{padding-left:24px;margin:6px 0} ol.moments li{margin:2px 0}
button.moment{font:inherit;cursor:pointer;border:1px solid #bbb;background:#f7f7f7;border-radius:4px;padding:2px 8px}
button.moment.active{background:#ffe2b8;border-color:#e69a2e}
.meta{color:#666;font-size:12px} .failed{color:#a00}
"""

_SCRIPT = """
(function(){
  const data = JSON.parse(document.getElementById('highlight-data').textContent);
  const root = document.getElementById('videos');
  const fmt = s => { const m = Math.floor(s / 60), r = (s - 60 * m).toFixed(1); return m + ':' + (r < 10 ? '0' : '') + r; };
  data.videos.forEach(v => {
    const sec = document.createElement('section'); sec.className = 'video'; sec.id = 'video-' + v.vid;
    const h = document.createElement('h2'); h.textContent = v.vid; sec.appendChild(h);
    const meta = document.createElement('div'); meta.className = 'meta';
    meta.textContent = v.duration_s.toFixed(1) + ' s, ' + v.num_segments + ' segments, ' +
      (v.has_audio ? 'with audio' : 'no audio track') + '; reel ' + v.reel_duration_s.toFixed(1) + ' s';
    sec.appendChild(meta);
    const row = document.createElement('div'); row.className = 'row';
    const left = document.createElement('div'); left.className = 'col';
    const player = document.createElement('video'); player.className = 'player'; player.controls = true;
    // open on the best moment, so the player shows it before anything is clicked
    player.preload = 'auto'; player.src = v.video_src + (v.moments.length ? '#t=' + v.moments[0].start_s : '');
    left.appendChild(player);
    const img = document.createElement('img'); img.className = 'timeline'; img.alt = 'score timeline of ' + v.vid;
    img.src = v.timeline; left.appendChild(img);
    const right = document.createElement('div'); right.className = 'col';
    const t = document.createElement('div'); t.textContent = 'Moments, best first:'; right.appendChild(t);
    const list = document.createElement('ol'); list.className = 'moments';
    v.moments.forEach(m => {
      const li = document.createElement('li');
      const b = document.createElement('button'); b.className = 'moment'; b.type = 'button';
      b.dataset.start = m.start_s; b.dataset.end = m.end_s;
      b.textContent = fmt(m.start_s) + ' - ' + fmt(m.end_s) + '  (score ' + m.score.toFixed(3) + ')';
      b.addEventListener('click', () => {
        list.querySelectorAll('button.moment').forEach(x => x.classList.remove('active'));
        b.classList.add('active');
        player.currentTime = m.start_s;
        const p = player.play(); if (p && p.catch) { p.catch(() => {}); }
      });
      li.appendChild(b); list.appendChild(li);
    });
    right.appendChild(list);
    const rt = document.createElement('div'); rt.textContent = 'Highlight reel:'; right.appendChild(rt);
    const reel = document.createElement('video'); reel.className = 'reel'; reel.controls = true;
    reel.preload = 'auto'; reel.src = v.reel_src + '#t=0.5'; right.appendChild(reel);
    row.appendChild(left); row.appendChild(right); sec.appendChild(row); root.appendChild(sec);
  });
  if (data.failures.length) {
    const f = document.createElement('section'); f.className = 'video failed';
    const h = document.createElement('h2'); h.textContent = 'Videos that failed'; f.appendChild(h);
    const ul = document.createElement('ul');
    data.failures.forEach(x => { const li = document.createElement('li'); li.textContent = x.video + ': ' + x.error; ul.appendChild(li); });
    f.appendChild(ul); root.appendChild(f);
  }
})();
"""


def _rel_url(target: str | os.PathLike, page_dir: Path) -> str:
    rel = os.path.relpath(Path(target).resolve(), page_dir.resolve())
    return quote(Path(rel).as_posix())


def _png_data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def write_page(out_dir: str | os.PathLike, results: list[dict], failures: list[dict], title: str = "Highlights") -> Path:
    """Write ``out_dir/index.html`` for the run's per-video results (the ``<vid>.json`` dicts, with
    ``video`` the source path, ``reel`` and ``timeline`` file names inside ``out_dir``) and failures
    ({"video", "error"}); return its path."""
    out_dir = Path(out_dir)
    videos = []
    for r in results:
        videos.append({
            "vid": r["vid"],
            "video_src": _rel_url(r["video"], out_dir),
            "reel_src": _rel_url(out_dir / r["reel"]["file"], out_dir),
            "timeline": _png_data_uri(out_dir / r["timeline"]),
            "duration_s": r["duration_s"],
            "num_segments": len(r["segments"]),
            "has_audio": r["has_audio"],
            "reel_duration_s": r["reel"]["duration_s"],
            "moments": [{"start_s": a, "end_s": b, "score": s} for a, b, s in r["windows"]],
        })
    data = json.dumps({"videos": videos, "failures": [{"video": str(f["video"]), "error": str(f["error"])}
                                                      for f in failures]})
    data = data.replace("</", "<\\/")  # keep "</script>" out of the embedded JSON
    page = (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<link rel=\"icon\" href=\"data:,\"><title>{html.escape(title)}</title><style>{_STYLE}</style></head>\n"
        f"<body><h1>{html.escape(title)}</h1><div id=\"videos\"></div>\n"
        f"<script type=\"application/json\" id=\"highlight-data\">{data}</script>\n"
        f"<script>{_SCRIPT}</script></body></html>\n"
    )
    path = out_dir / "index.html"
    path.write_text(page, encoding="utf-8")
    return path
