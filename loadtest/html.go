package loadtest

import (
	"fmt"
	"html/template"
	"io"
	"math"
	"strings"
)

// WriteHTML writes the report as one self-contained page: inline CSS and
// SVG charts, no scripts, nothing fetched.
func WriteHTML(w io.Writer, r *Report) error {
	var recv, sent, srvOut, cpu []point
	for _, s := range r.Timeline {
		recv = append(recv, point{s.Seconds, s.RecvKbps})
		sent = append(sent, point{s.Seconds, s.SentKbps})
		srvOut = append(srvOut, point{s.Seconds, s.ServerKbps})
		cpu = append(cpu, point{s.Seconds, s.ServerCPU})
	}
	bitrate := []series{{"received by all peers", recv, "line"}, {"sent by publishers", sent, "line2"}}
	if r.Server.Available {
		bitrate = append(bitrate, series{"forwarded by the server", srvOut, "line3"})
	}
	data := struct {
		R          *Report
		MiB        float64
		PerPeerMiB float64
		AvgKbps    float64
		Bitrate    template.HTML
		CPU        template.HTML
		JoinHist   template.HTML
	}{r, r.Server.RSSBytes / (1 << 20), r.Server.RSSPerPeer / (1 << 20), meanSubscriberKbps(r),
		lineChart("bitrate (kbit/s)", bitrate...), lineChart("server CPU (cores)", series{"server CPU", cpu, "line"}),
		histogram(r.JoinSamples, "join time (ms)")}
	return reportPage.Execute(w, data)
}

// meanSubscriberKbps averages the bitrate over the peers that expected media.
func meanSubscriberKbps(r *Report) float64 {
	sum, n := 0.0, 0
	for _, s := range r.Subscribers {
		if s.Expected > 0 {
			sum += s.BitrateKbps
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return sum / float64(n)
}

type point struct{ x, y float64 }

// series is one line of a chart; class picks its colour in the page's CSS.
type series struct {
	name  string
	pts   []point
	class string
}

const chartW, chartH, pad = 640.0, 220.0, 40.0

// lineChart draws series on shared axes, with the maxima and, for more
// than one series, a legend in a row above the plot.
func lineChart(title string, ss ...series) template.HTML {
	top := 24.0
	if len(ss) > 1 {
		top = 44
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg viewBox="0 0 %.0f %.0f" role="img" aria-label="%s"><text x="%.0f" y="16" class="t">%s</text>`, chartW, chartH, template.HTMLEscapeString(title), pad, template.HTMLEscapeString(title))
	fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" class="axis"/><line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" class="axis"/>`,
		pad, chartH-pad, chartW-10, chartH-pad, pad, top, pad, chartH-pad)
	maxX, maxY := 0.0, 0.0
	for _, s := range ss {
		for _, p := range s.pts {
			maxX, maxY = math.Max(maxX, p.x), math.Max(maxY, p.y)
		}
	}
	if maxX <= 0 {
		maxX = 1
	}
	if maxY <= 0 {
		maxY = 1
	}
	drawn := false
	for i, s := range ss {
		if len(ss) > 1 {
			lx := pad + float64(i)*190
			fmt.Fprintf(&b, `<line x1="%.0f" y1="30" x2="%.0f" y2="30" class="%s"/><text x="%.0f" y="34" class="l">%s</text>`,
				lx, lx+16, s.class, lx+20, template.HTMLEscapeString(s.name))
		}
		if len(s.pts) == 0 {
			continue
		}
		drawn = true
		var coords []string
		for _, p := range s.pts {
			x := pad + p.x/maxX*(chartW-pad-10)
			y := chartH - pad - p.y/maxY*(chartH-pad-top)
			coords = append(coords, fmt.Sprintf("%.1f,%.1f", x, y))
		}
		fmt.Fprintf(&b, `<polyline points="%s" class="%s"><title>%s</title></polyline>`, strings.Join(coords, " "), s.class, template.HTMLEscapeString(s.name))
	}
	if drawn {
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" class="l" text-anchor="end">%s</text><text x="%.0f" y="%.0f" class="l" text-anchor="end">0</text><text x="%.0f" y="%.0f" class="l">%.0f s</text>`,
			pad-4, top+4, axisNumber(maxY), pad-4, chartH-pad, chartW-50, chartH-pad+16, maxX)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// axisNumber prints an axis maximum short enough for the margin.
func axisNumber(v float64) string {
	switch {
	case v >= 10000:
		return fmt.Sprintf("%.0fk", v/1000)
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.2g", v)
}

// histogram draws values in ten equal bins.
func histogram(xs []float64, title string) template.HTML {
	var b strings.Builder
	fmt.Fprintf(&b, `<svg viewBox="0 0 %.0f %.0f" role="img" aria-label="%s"><text x="%.0f" y="16" class="t">%s</text>`, chartW, chartH, template.HTMLEscapeString(title), pad, template.HTMLEscapeString(title))
	if len(xs) > 0 {
		lo, hi := xs[0], xs[0]
		for _, x := range xs {
			lo, hi = math.Min(lo, x), math.Max(hi, x)
		}
		const bins = 10
		width := (hi - lo) / bins
		if width <= 0 {
			width = 1
		}
		var counts [bins]int
		maxC := 0
		for _, x := range xs {
			i := min(bins-1, int((x-lo)/width))
			counts[i]++
			maxC = max(maxC, counts[i])
		}
		bw := (chartW - pad - 10) / bins
		for i, c := range counts {
			h := float64(c) / float64(maxC) * (chartH - pad - 24)
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" class="bar"><title>%.0f-%.0f ms: %d</title></rect>`,
				pad+float64(i)*bw+1, chartH-pad-h, bw-2, h, lo+float64(i)*width, lo+float64(i+1)*width, c)
		}
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" class="l">%.0f ms</text><text x="%.0f" y="%.0f" class="l">%.0f ms</text><text x="4" y="30" class="l">%d</text>`,
			pad, chartH-pad+16, lo, chartW-70, chartH-pad+16, hi, maxC)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

var reportPage = template.Must(template.New("report").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Confab load report: {{.R.Scenario}}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em;color:#1c2128;max-width:72em}
h1{margin-bottom:.2em} .sub{color:#57606a;margin-top:0}
.cards{display:flex;gap:1em;flex-wrap:wrap} .card{border:1px solid #d0d7de;border-radius:8px;padding:.7em 1em;min-width:10em}
.card b{display:block;font-size:1.5em} svg{width:100%;max-width:640px;border:1px solid #d0d7de;border-radius:8px;margin:.5em 0}
.axis{stroke:#8c959f} .line,.line2,.line3{fill:none;stroke:#0969da;stroke-width:2} .line2{stroke:#bf8700} .line3{stroke:#8250df;stroke-dasharray:4 3} .bar{fill:#0969da}
.t{font-size:13px;font-weight:600} .l{font-size:11px;fill:#57606a}
table{border-collapse:collapse;margin-top:1em} td,th{padding:.25em .8em;border-bottom:1px solid #eaeef2;text-align:right} th:first-child,td:first-child{text-align:left}
.bad{color:#cf222e}
</style></head><body>
<h1>Confab load report</h1>
<p class="sub">scenario <b>{{.R.Scenario}}</b>: {{.R.Joined}} of {{.R.Peers}} peers joined{{if .R.Refused}}, {{len .R.Refused}} refused by a busy server{{end}}, media for {{printf "%.1f" .R.Duration}} s</p>
<div class="cards">
<div class="card">join p50 / p95 / p99<b>{{printf "%.0f" .R.JoinMillis.P50}} / {{printf "%.0f" .R.JoinMillis.P95}} / {{printf "%.0f" .R.JoinMillis.P99}} ms</b></div>
<div class="card">loss after repair<b>{{printf "%.3f" .R.LossPercent}} %</b></div>
<div class="card">freezes &gt; 500 ms<b>{{.R.Freezes}}</b></div>
<div class="card">packets received<b>{{.R.Packets}}</b></div>
{{if .R.Server.Available}}<div class="card">server CPU-s per 1000 packets out<b>{{printf "%.3f" .R.Server.CPUPer1000}}</b></div>
<div class="card">server memory<b>{{printf "%.0f" .MiB}} MiB</b></div>
<div class="card">server memory growth per peer<b>{{printf "%.2f" .PerPeerMiB}} MiB</b></div>{{end}}
{{with .R.Delay.Video}}{{if .Packets}}<div class="card">forwarding delay, video p50 / p95 / p99<b>{{printf "%.1f" .Millis.P50}} / {{printf "%.1f" .Millis.P95}} / {{printf "%.1f" .Millis.P99}} ms</b>{{.Matched}} of {{.Packets}} packets matched</div>{{end}}{{end}}
{{with .R.Delay.Audio}}{{if .Packets}}<div class="card">forwarding delay, audio p50 / p95 / p99<b>{{printf "%.1f" .Millis.P50}} / {{printf "%.1f" .Millis.P95}} / {{printf "%.1f" .Millis.P99}} ms</b>{{.Matched}} of {{.Packets}} packets matched</div>{{end}}{{end}}
{{with .R.ServerSyscalls}}<div class="card">server system calls / context switches per forwarded packet<b>{{if .SyscallsCounted}}{{printf "%.2f" .SyscallsPerPacket}}{{else}}n/a{{end}} / {{printf "%.3f" .SwitchesPerPacket}}</b>{{.Source}}, pid {{.PID}}</div>{{end}}
<div class="card">sent by all publishers<b>{{printf "%.0f" .R.SentKbps}} kbit/s</b></div>
<div class="card">received per subscriber (mean)<b>{{printf "%.0f" .AvgKbps}} kbit/s</b></div>
{{if .R.Reconnects}}<div class="card">rejoins; media again p50 / max<b>{{.R.Reconnects}}; {{printf "%.0f" .R.ResumeMillis.P50}} / {{printf "%.0f" .R.ResumeMillis.Max}} ms</b></div>{{end}}
</div>
<h2>Over time</h2>
{{.Bitrate}}
{{.CPU}}
<h2>Join times</h2>
{{.JoinHist}}
<h2>Layers received</h2>
<table><tr><th>layer (from keyframe sizes)</th><th>video tracks</th></tr>{{range $k, $v := .R.Layers}}<tr><td>{{$k}}</td><td>{{$v}}</td></tr>{{end}}</table>
{{if .R.ServerLayers}}<table><tr><th>layer (as the server reported)</th><th>video tracks</th></tr>{{range $k, $v := .R.ServerLayers}}<tr><td>{{$k}}</td><td>{{$v}}</td></tr>{{end}}</table>{{end}}
{{if gt (len .R.Nodes) 1}}<h2>Nodes</h2>
<table id="nodes"><tr><th>node</th><th>joined</th><th>join p50 / p95 ms</th><th>packets received</th><th>lost</th><th>kbit/s</th><th>rejoins from / to</th><th>server CPU-s</th></tr>
{{range .R.Nodes}}<tr><td>{{.URL}}</td><td>{{.Joined}}/{{.Participants}}</td><td>{{printf "%.0f" .JoinMillis.P50}} / {{printf "%.0f" .JoinMillis.P95}}</td><td>{{.Packets}}</td><td{{if .Lost}} class="bad"{{end}}>{{.Lost}}</td><td>{{printf "%.0f" .ReceivedKbps}}</td><td>{{.RejoinsFrom}} / {{.RejoinsTo}}</td><td>{{if .Server.Available}}{{printf "%.2f" .Server.CPUSeconds}}{{else}}-{{end}}</td></tr>
{{end}}</table>{{end}}
<h2>Peers</h2>
<table id="peers"><tr><th>peer</th><th>tracks</th><th>packets</th><th>lost</th><th>kbit/s</th><th>freezes</th><th>layers</th></tr>
{{range .R.Subscribers}}<tr><td>{{.Name}}</td><td>{{.Tracks}}/{{.Expected}}</td><td>{{.Packets}}</td><td{{if .Lost}} class="bad"{{end}}>{{.Lost}}</td><td>{{printf "%.0f" .BitrateKbps}}</td><td{{if .Freezes}} class="bad"{{end}}>{{.Freezes}}</td><td>{{range $i, $l := .Layers}}{{if $i}} {{end}}{{$l}}{{end}}</td></tr>
{{end}}</table>
{{if .R.Failures}}<h2 class="bad">Failures</h2><ul>{{range .R.Failures}}<li>{{.}}</li>{{end}}</ul>{{end}}
</body></html>
`))
