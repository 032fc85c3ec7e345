## The gate's report page. Every ${...} is HTML-escaped (default filter ``h``); never use ``| n``.
<%def name="change_chart(b)">
<%
    width, height = chart_size
    pad = 8
    def x(at):
        return "%.1f" % (pad + at * (width - 2 * pad))
    mid = height / 2
%>\
<svg class="change-chart" width="${width}" height="${height}" role="img" viewBox="0 0 ${width} ${height}" data-outcome="${b.outcome}">
<title>${b.label}: change ${fmt.signed(b.delta)}, 95% interval ${fmt.interval(b.lower, b.upper)}, tolerance ${fmt.signed(b.tolerance_delta) if b.direction else "±" + fmt.num(b.tolerance)}: ${b.outcome}</title>
<line class="axis" x1="${pad}" y1="${mid}" x2="${width - pad}" y2="${mid}"/>
<line class="zero" x1="${x(0.5)}" y1="2" x2="${x(0.5)}" y2="${height - 2}"/>
% for at in b.tolerance_at:
<line class="tolerance" x1="${x(at)}" y1="2" x2="${x(at)}" y2="${height - 2}"/>
% endfor
<line class="interval" x1="${x(b.lower_at)}" y1="${mid}" x2="${x(b.upper_at)}" y2="${mid}"/>
<circle class="delta" cx="${x(b.delta_at)}" cy="${mid}" r="5"/>
</svg>
</%def>\
<%def name="trend_plot(t)">
<%
    width, height = trend_size
%>\
<svg class="trend" width="${width}" height="${height}" role="img" viewBox="0 0 ${width} ${height}" data-metric="${t.metric}" data-points="${len(t.points)}">
<title>${t.metric} over ${len(t.points)} runs</title>
<line class="axis" x1="56" y1="${height - 24}" x2="${width - 12}" y2="${height - 24}"/>
<line class="axis" x1="56" y1="10" x2="56" y2="${height - 24}"/>
<text class="label" x="2" y="18">${fmt.num(t.high)}</text>
<text class="label" x="2" y="${height - 26}">${fmt.num(t.low)}</text>
% if t.band:
<polygon class="band" points="${t.band}"/>
% endif
% if len(t.points) > 1:
<polyline class="line" points="${t.line}"/>
% endif
% for p in t.points:
<circle class="${"point" if p.same_dataset else "point other-dataset"}" cx="${p.x}" cy="${p.y}" r="${3 if p.same_dataset else 4}"><title>run ${p.run_id}: ${fmt.num(p.value)}${(" [%s, %s]" % (fmt.num(p.lower), fmt.num(p.upper))) if p.lower is not None and p.upper is not None else ""}${"" if p.same_dataset else ", on another dataset"}</title></circle>
% endfor
% if t.baseline is not None:
<rect class="mark-baseline" x="${"%.1f" % (t.baseline.x - 5)}" y="${"%.1f" % (t.baseline.y - 5)}" width="10" height="10"><title>baseline run ${t.baseline.run_id}: ${fmt.num(t.baseline.value)}</title></rect>
% endif
% if t.current is not None:
<circle class="mark-current" cx="${t.current.x}" cy="${t.current.y}" r="6"><title>this run, ${t.current.run_id}: ${fmt.num(t.current.value)}</title></circle>
% endif
% if t.points:
<text class="label" x="${t.points[0].x}" y="${height - 8}">run ${t.points[0].run_id}</text>
% if len(t.points) > 1:
<text class="label" x="${t.points[-1].x - 40}" y="${height - 8}">run ${t.points[-1].run_id}</text>
% endif
% endif
</svg>
</%def>\
<%def name="diff(pieces)">\
% for piece in pieces:
% if piece.kind == "removed":
<del>${piece.text}</del> \
% elif piece.kind == "added":
<ins>${piece.text}</ins> \
% elif piece.kind == "gap":
… \
% else:
${piece.text} \
% endif
% endfor
</%def>\
<%
    v, run, base = report.verdict, report.run, report.baseline
%>\
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="referrer" content="no-referrer">
<title>${title}</title>
<style>${style}</style>
</head>
<body>
<h1>Run ${run.id}: <span class="outcome ${v.outcome}">${title}</span></h1>
% if why:
<p>${why}</p>
% endif
<table class="summary">
<tr><th>this run</th><td>run ${run.id}: ${fmt.count(run.n_cases)} cases, finished ${fmt.when(run.finished_at)}</td></tr>
<tr><th>baseline</th><td>run ${base.id} of ${base.model}: ${fmt.count(base.n_cases)} cases, finished ${fmt.when(base.finished_at)}</td></tr>
<tr><th>dataset</th><td>${fmt.short_hash(run.dataset_sha256)}</td></tr>
</table>
% if v.dataset_changed:
<p class="warning">The dataset changed since the baseline (baseline ${fmt.short_hash(base.dataset_sha256)}, this run ${fmt.short_hash(run.dataset_sha256)}). Cases are paired by case id.</p>
% endif
<h2>Change against tolerance</h2>
% if bars:
<p class="legend">Per comparison: the dot is the change (new - baseline), the blue bar its 95% interval, the dashed line no change, the red line the tolerance. Worse is to the left (flipped where lower is better); each row has its own scale. A bar across both the red and the dashed line is inconclusive: a drop that matters is neither shown nor ruled out.</p>
<table class="changes">
<tr><th>metric</th><th>outcome</th><th>change</th><th class="num">delta</th><th>95% interval</th><th class="num">tolerance</th></tr>
% for b in bars:
<tr><td>${b.label}</td><td class="outcome ${b.outcome}">${b.outcome}</td><td>${change_chart(b)}</td><td class="num">${fmt.signed(b.delta)}</td><td class="nw">${fmt.interval(b.lower, b.upper)}</td><td class="num">${fmt.signed(b.tolerance_delta) if b.direction else "±" + fmt.num(b.tolerance)}</td></tr>
% endfor
</table>
% else:
<p>No metric was compared.</p>
% endif
<h2>Trends</h2>
% if trends:
<p class="legend">Each metric in the last ${max(len(t.points) for t in trends)} runs of ${run.suite} on ${run.model}, oldest first: the line is the value, the band its interval, the square the baseline run, the large dot this run; a hollow dot is a run on another dataset than this run's.</p>
% for t in trends:
<h3>${t.metric}</h3>
${trend_plot(t)}
% endfor
% else:
<p>No run of ${run.suite} on ${run.model} has metrics yet.</p>
% endif
<h2>Metrics</h2>
<p class="notes">Delta is new - baseline; p is one-sided, in the direction the row is judged in, and Holm-adjusted over every comparison.</p>
<table>
<tr><th>metric</th><th class="num">cases</th><th class="num">baseline</th><th class="num">new</th><th class="num">delta</th><th>one-sided bound</th><th class="num">p</th><th>outcome</th><th>why</th></tr>
% for m in rows:
<tr><td>${label(m)}</td><td class="num">${fmt.count(m.n)}</td><td class="num">${fmt.num(m.baseline)}</td><td class="num">${fmt.num(m.new)}</td><td class="num">${fmt.signed(m.delta)}</td><td class="nw">${fmt.bound(m.bound, m.bound_side, m.bound_level)}</td><td class="num">${fmt.p_value(m.p_adjusted)}</td><td class="outcome ${m.outcome}">${m.outcome}</td><td>${m.reason}</td></tr>
% endfor
</table>
% for title_, kind in (("Degraded cases", "degraded"), ("Improved cases", "improved")):
<% chosen = [c for c in changes if (c["change"].change == "improved") == (kind == "improved")] %>\
% if chosen:
<h2>${title_} (${len(chosen)})</h2>
<table class="cases">
<tr><th>case</th><th>metric</th><th>baseline -> new</th><th>input</th><th>expected</th><th>answer, baseline to new</th></tr>
% for item in chosen:
<% c = item["change"] %>\
<tr><td class="nw">${c.case_id}</td><td class="nw">${c.metric}</td><td class="num">${fmt.num(c.baseline_score)} -> ${fmt.num(c.new_score)}</td><td>${fmt.truncate(fmt.text_of(c.input), 200)}</td><td>${fmt.truncate(fmt.text_of(c.expected), 200)}</td>\
% if item["diff"] is not None:
<td class="diff">${diff(item["diff"])}</td></tr>
% else:
<td class="diff"><del>${fmt.truncate(fmt.text_of(c.baseline_prediction), 200)}</del> <ins>${fmt.truncate(fmt.text_of(c.new_prediction), 200)}</ins></td></tr>
% endif
% endfor
</table>
% endif
% endfor
<h2>Cost and latency</h2>
<table>
<tr><th></th><th class="num">baseline (run ${base.id})</th><th class="num">this run (run ${run.id})</th></tr>
% for name, was, now in operations:
<tr><td>${name}</td><td class="num">${was}</td><td class="num">${now}</td></tr>
% endfor
</table>
<p class="notes">monitor ${version}; verdict ${v.id} of ${fmt.when(v.created_at)}</p>
</body>
</html>
