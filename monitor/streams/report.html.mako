## The drift report page. Every ${...} is HTML-escaped (default filter ``h``); never use ``| n``.
<%def name="verdict(flag)">${"drifted" if flag else "not drifted"}</%def>\
<%def name="numerical_plot(plot)">
<%
    width, height, left, bottom = 640, 150, 8, 22
    step = (width - left) / len(plot.bars)
    bar = step * 0.42
    scale = (height - bottom - 8) / plot.peak
%>\
<svg class="plot" width="${width}" height="${height}" role="img" viewBox="0 0 ${width} ${height}">
<title>${plot.caption}</title>
% for i, b in enumerate(plot.bars):
<rect class="ref" x="${"%.1f" % (left + i * step)}" y="${"%.1f" % (height - bottom - b.reference * scale)}" width="${"%.1f" % bar}" height="${"%.1f" % (b.reference * scale)}"><title>from ${b.label}: reference ${fmt(b.reference)}, window ${fmt(b.current)}</title></rect>
<rect class="cur" x="${"%.1f" % (left + i * step + bar)}" y="${"%.1f" % (height - bottom - b.current * scale)}" width="${"%.1f" % bar}" height="${"%.1f" % (b.current * scale)}"><title>from ${b.label}: reference ${fmt(b.reference)}, window ${fmt(b.current)}</title></rect>
% if i % 5 == 0:
<text class="label" x="${"%.1f" % (left + i * step)}" y="${height - 6}">${b.label}</text>
% endif
% endfor
<line class="axis" x1="${left}" y1="${height - bottom}" x2="${width}" y2="${height - bottom}"/>
</svg>
</%def>\
<%def name="categorical_plot(plot)">
<%
    row, label_width, width = 18, 220, 640
    height = row * len(plot.bars) + 4
    scale = (width - label_width - 60) / plot.peak
%>\
<svg class="plot" width="${width}" height="${height}" role="img" viewBox="0 0 ${width} ${height}">
<title>${plot.caption}</title>
% for i, b in enumerate(plot.bars):
<text class="label" x="0" y="${i * row + 13}">${b.label if len(b.label) <= 32 else b.label[:31] + "\u2026"}</text>
<rect class="ref" x="${label_width}" y="${i * row + 2}" width="${"%.1f" % (b.reference * scale)}" height="7"><title>${b.label}: reference ${fmt(b.reference)}</title></rect>
<rect class="cur" x="${label_width}" y="${i * row + 9}" width="${"%.1f" % (b.current * scale)}" height="7"><title>${b.label}: window ${fmt(b.current)}</title></rect>
<text class="label" x="${"%.1f" % (label_width + max(b.reference, b.current) * scale + 4)}" y="${i * row + 13}">${fmt(b.current)}</text>
% endfor
</svg>
</%def>\
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="referrer" content="no-referrer">
<title>Drift: ${stream.name}${" " + window if window else ""}</title>
<style>${style}</style>
</head>
<body>
<h1>Drift report: ${stream.name}</h1>
<table class="summary">
% if window:
<tr><th>window</th><td>${window}</td></tr>
% endif
<tr><th>rows</th><td>${result.n_rows} in the window; ${ref_rows} in the reference (plots: at most ${sample_rows} of each)</td></tr>
% if result.status == "ok":
<tr><th>dataset drift</th><td class="flag">${"detected" if result.dataset_drifted else "not detected"}: ${len(result.drifted_columns)} of ${len(result.columns)} columns drifted (share ${fmt(result.drift_share)}; threshold ${fmt(stream.thresholds.drift_share)})</td></tr>
% else:
<tr><th>status</th><td class="flag">${result.status}: too few rows to judge</td></tr>
% endif
<tr><th>thresholds</th><td>${stream.thresholds.mode}${(", false-alarm rate %s per column" % fmt(stream.thresholds.false_alarm_rate)) if stream.thresholds.mode == "calibrated" else ""}${(", alpha %s, %s correction" % (fmt(stream.thresholds.alpha), stream.thresholds.correction)) if stream.thresholds.mode == "p-value" else ""}</td></tr>
</table>
<p class="legend"><svg width="12" height="12"><rect class="ref" width="12" height="12"/></svg> reference
<svg width="12" height="12"><rect class="cur" width="12" height="12"/></svg> window</p>
% for c in columns:
<% d = c["drift"] %>\
<section class="column ${"drifted" if d.drifted else "stable"}">
<h2>${d.column} <small>(${d.kind}${(", from " + d.source) if d.source else ""})</small>: <span class="flag">${verdict(d.drifted)}</span></h2>
<table>
<tr><th>method</th><th class="num">statistic</th><th class="num">p-value</th><th>compared</th><th class="num">threshold</th><th>result</th></tr>
% for r in c["rows"]:
<tr><td>${r["method"]}${" (decides)" if r["decides"] else ""}</td><td class="num">${fmt(r["statistic"])}</td><td class="num">${fmt(r["p_value"])}</td><td>${r["compared"]}</td><td class="num">${fmt(r["threshold"])}</td><td>${verdict(r["drifted"])}</td></tr>
% endfor
</table>
<p>missing ${fmt(d.quality.missing_share)}\
% if d.quality.out_of_range_share is not None:
; outside the reference's range ${fmt(d.quality.out_of_range_share)}\
% endif
% if d.quality.new_category_share is not None:
; new categories ${fmt(d.quality.new_category_share)}\
% endif
% if d.quality.new_categories:
: ${", ".join(d.quality.new_categories)}\
% endif
</p>
% if d.notes:
<p class="notes">${"; ".join(d.notes)}</p>
% endif
% if c["plot"] is not None:
% if d.kind == "numerical":
${numerical_plot(c["plot"])}
% else:
${categorical_plot(c["plot"])}
% endif
<p class="notes">${c["plot"].caption}</p>
% endif
</section>
% endfor
</body>
</html>
