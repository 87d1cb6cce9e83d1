package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/fess-seg/fess/internal/atomicio"
)

// ReportData is the content of an HTML report.
type ReportData struct {
	Title string
	// Intro is shown under the title; blank lines separate paragraphs.
	Intro string
	// Generated is an optional line such as a date or command, shown at the
	// top (left to the caller so that reports are reproducible).
	Generated   string
	Tables      []TableSection
	Comparisons []ComparisonSection
	// Plots are whole-experiment figures (the size plot, training curves).
	Plots []ImageFile
	// Cases are the per-case slice figures.
	Cases []CaseImages
	// Runs lists each run's configuration.
	Runs []RunInfo
}

// TableSection is a results table with its caption; the report shows it
// twice (mean ± std and mean ± SEM) and links its CSV and Markdown forms.
type TableSection struct {
	Title   string
	Caption string
	Table   *Table
	// Warnings are shown next to the table (e.g. a data set with a single
	// test case).
	Warnings []string
}

// ComparisonSection is a table of paired comparisons with its caption.
type ComparisonSection struct {
	Title   string
	Caption string
	Rows    ComparisonTable
	// Warnings are shown next to the table; nil: Rows.SmallSampleWarnings.
	Warnings []string
}

// ImageFile is a figure on disk to copy into the report. Path is shown
// (PNG, SVG, JPEG or GIF); Alternates (e.g. the SVG of a PNG) are copied
// and linked.
type ImageFile struct {
	Title      string
	Caption    string
	Path       string
	Alternates []string
}

// CaseImages are the figures of one test case.
type CaseImages struct {
	ID     string
	Images []ImageFile
}

// RunInfo is one run: its name, folder and configuration (JSON, shown
// pretty-printed; non-JSON is shown as text).
type RunInfo struct {
	Name   string
	Dir    string
	Config []byte
}

// HTML writes a self-contained report into dir: dir/index.html with inline
// CSS, no scripts and no external URLs, and dir/assets/ with copies of every
// image and the tables' CSV and Markdown files. The page opens from disk
// with no network. Every file is written atomically; index.html last.
func HTML(dir string, d ReportData) error {
	assets := filepath.Join(dir, "assets")
	if err := os.MkdirAll(assets, 0o755); err != nil {
		return err
	}
	var page pageData
	page.Title = d.Title
	if page.Title == "" {
		page.Title = "fess report"
	}
	page.Generated = d.Generated
	for _, p := range strings.Split(strings.TrimSpace(d.Intro), "\n\n") {
		if p = strings.TrimSpace(p); p != "" {
			page.Intro = append(page.Intro, p)
		}
	}
	n := 0
	copyAsset := func(src string) (string, error) {
		n++
		name := fmt.Sprintf("%03d-%s", n, safeName(filepath.Base(src)))
		data, err := os.ReadFile(src)
		if err != nil {
			return "", err
		}
		if err := atomicio.WriteFile(filepath.Join(assets, name), data, 0o644); err != nil {
			return "", err
		}
		return "assets/" + name, nil
	}
	image := func(f ImageFile) (pageImage, error) {
		src, err := copyAsset(f.Path)
		if err != nil {
			return pageImage{}, err
		}
		im := pageImage{Title: f.Title, Caption: f.Caption, Src: src}
		for _, a := range f.Alternates {
			s, err := copyAsset(a)
			if err != nil {
				return pageImage{}, err
			}
			im.Alt = append(im.Alt, pageLink{strings.ToUpper(strings.TrimPrefix(filepath.Ext(a), ".")), s})
		}
		return im, nil
	}

	for i, ts := range d.Tables {
		if ts.Table == nil {
			continue
		}
		base := fmt.Sprintf("table-%d", i+1)
		pt := pageTable{Title: ts.Title, Caption: ts.Caption, Warnings: ts.Warnings}
		for _, sp := range []Spread{StdDev, SEM} {
			pt.Views = append(pt.Views, tableView(ts.Table, sp))
		}
		if err := ts.Table.SaveCSV(filepath.Join(assets, base+".csv")); err != nil {
			return err
		}
		pt.Links = append(pt.Links, pageLink{"CSV", "assets/" + base + ".csv"})
		for _, sp := range []Spread{StdDev, SEM} {
			name := fmt.Sprintf("%s-%s.md", base, strings.ToLower(sp.String()))
			if err := ts.Table.SaveMarkdown(filepath.Join(assets, name), sp); err != nil {
				return err
			}
			pt.Links = append(pt.Links, pageLink{"Markdown (± " + sp.String() + ")", "assets/" + name})
		}
		page.Tables = append(page.Tables, pt)
	}
	for i, cs := range d.Comparisons {
		pc := pageComparison{Title: cs.Title, Caption: cs.Caption, Warnings: cs.Warnings}
		if pc.Warnings == nil {
			pc.Warnings = cs.Rows.SmallSampleWarnings()
		}
		for _, c := range cs.Rows {
			p := c.Paired
			pc.Rows = append(pc.Rows, []string{c.Dataset, c.Loss, c.Reference, MetricTitle(c.Metric),
				fmt.Sprint(p.N), fmtSigned(p.MeanDiff), "[" + fmtSigned(p.CILow) + ", " + fmtSigned(p.CIHigh) + "]",
				fmtNum(p.W, 'f', 1), fmtP(p.P), pMethod(p)})
		}
		name := fmt.Sprintf("comparison-%d.csv", i+1)
		if err := atomicio.Write(filepath.Join(assets, name), 0o644, cs.Rows.WriteCSV); err != nil {
			return err
		}
		pc.CSV = "assets/" + name
		page.Comparisons = append(page.Comparisons, pc)
	}
	for _, f := range d.Plots {
		im, err := image(f)
		if err != nil {
			return err
		}
		page.Plots = append(page.Plots, im)
	}
	for _, c := range d.Cases {
		pc := pageCase{ID: c.ID}
		for _, f := range c.Images {
			im, err := image(f)
			if err != nil {
				return err
			}
			pc.Images = append(pc.Images, im)
		}
		page.Cases = append(page.Cases, pc)
	}
	for _, r := range d.Runs {
		cfg := string(r.Config)
		var buf bytes.Buffer
		if json.Indent(&buf, r.Config, "", "  ") == nil {
			cfg = buf.String()
		}
		page.Runs = append(page.Runs, pageRun{Name: r.Name, Dir: r.Dir, Config: cfg})
	}
	return atomicio.Write(filepath.Join(dir, "index.html"), 0o644, func(w io.Writer) error {
		return pageTemplate.Execute(w, page)
	})
}

// safeName keeps letters, digits, '.', '-' and '_' of a file name.
func safeName(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}

func tableView(t *Table, sp Spread) pageTableView {
	v := pageTableView{Spread: sp.String()}
	ms := t.metrics()
	for _, m := range ms {
		v.Head = append(v.Head, MetricTitle(m))
	}
	prev := ""
	for i, r := range t.Rows {
		row := pageRow{Loss: r.Loss}
		if i == 0 || r.Dataset != prev {
			row.Dataset = r.Dataset
		}
		prev = r.Dataset
		for _, m := range ms {
			cell := "n/a"
			if s, ok := r.Metrics[m]; ok {
				cell = FormatCell(s, sp)
			}
			row.Cells = append(row.Cells, cell)
		}
		v.Rows = append(v.Rows, row)
	}
	return v
}

type pageData struct {
	Title, Generated string
	Intro            []string
	Tables           []pageTable
	Comparisons      []pageComparison
	Plots            []pageImage
	Cases            []pageCase
	Runs             []pageRun
}

type pageLink struct{ Label, Href string }

type pageTable struct {
	Title, Caption string
	Warnings       []string
	Views          []pageTableView
	Links          []pageLink
}

type pageTableView struct {
	Spread string
	Head   []string
	Rows   []pageRow
}

type pageRow struct {
	Dataset, Loss string
	Cells         []string
}

type pageComparison struct {
	Title, Caption, CSV string
	Warnings            []string
	Rows                [][]string
}

type pageImage struct {
	Title, Caption, Src string
	Alt                 []pageLink
}

type pageCase struct {
	ID     string
	Images []pageImage
}

type pageRun struct{ Name, Dir, Config string }

var pageTemplate = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src 'self' file: data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>
body { font-family: system-ui, "Liberation Sans", Arial, sans-serif; margin: 2em auto; max-width: 1200px; padding: 0 1em; color: #222; background: #fff; }
h1 { font-size: 1.6em; } h2 { font-size: 1.3em; border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; } h3 { font-size: 1.1em; }
table { border-collapse: collapse; margin: .5em 0 1em; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #bbb; padding: .3em .6em; text-align: right; }
th { background: #eef3f8; } td.name, th.name { text-align: left; } td.dataset { font-weight: bold; text-align: left; }
figure { margin: 1em 0; } figure img { max-width: 100%; height: auto; border: 1px solid #ddd; }
figcaption, .caption, .meta { color: #555; font-size: .9em; }
.warning { color: #8a4b00; background: #fff6e5; border-left: 3px solid #e69f00; padding: .2em .6em; font-size: .9em; }
pre { background: #f6f6f6; padding: .8em; overflow-x: auto; font-size: .85em; }
details { margin: .4em 0; } summary { cursor: pointer; font-weight: bold; }
nav a { margin-right: 1em; }
</style>
</head>
<body>
<h1>{{.Title}}</h1>
{{with .Generated}}<p class="meta">{{.}}</p>{{end}}
{{range .Intro}}<p>{{.}}</p>
{{end}}<nav>{{if .Tables}}<a href="#results">Results</a>{{end}}{{if .Comparisons}}<a href="#comparisons">Paired comparisons</a>{{end}}{{if .Plots}}<a href="#plots">Plots</a>{{end}}{{if .Cases}}<a href="#cases">Cases</a>{{end}}{{if .Runs}}<a href="#runs">Runs</a>{{end}}</nav>
{{if .Tables}}<h2 id="results">Results</h2>
{{range $ti, $t := .Tables}}<section class="results-table">
{{with $t.Title}}<h3>{{.}}</h3>{{end}}{{with $t.Caption}}<p class="caption">{{.}}</p>{{end}}
{{range $t.Warnings}}<p class="warning">Warning: {{.}}</p>
{{end}}{{range $t.Views}}<table class="results" data-spread="{{.Spread}}">
<caption class="caption">mean ± {{.Spread}}</caption>
<thead><tr><th class="name">Dataset</th><th class="name">Loss function</th>{{range .Head}}<th>{{.}}</th>{{end}}</tr></thead>
<tbody>
{{range .Rows}}<tr><td class="dataset">{{.Dataset}}</td><td class="name">{{.Loss}}</td>{{range .Cells}}<td>{{.}}</td>{{end}}</tr>
{{end}}</tbody>
</table>
{{end}}<p class="meta">Download: {{range $i, $l := $t.Links}}{{if $i}} · {{end}}<a href="{{$l.Href}}">{{$l.Label}}</a>{{end}}</p>
</section>
{{end}}{{end}}
{{if .Comparisons}}<h2 id="comparisons">Paired comparisons</h2>
{{range .Comparisons}}{{with .Title}}<h3>{{.}}</h3>{{end}}{{with .Caption}}<p class="caption">{{.}}</p>{{end}}
{{range .Warnings}}<p class="warning">Warning: {{.}}</p>
{{end}}<table class="comparison">
<thead><tr><th class="name">Dataset</th><th class="name">Loss</th><th class="name">vs</th><th class="name">Metric</th><th>n</th><th>Mean difference</th><th>95% CI</th><th>Wilcoxon W</th><th>p</th><th class="name">p method</th></tr></thead>
<tbody>
{{range .Rows}}<tr>{{range $i, $c := .}}<td{{if or (lt $i 4) (eq $i 9)}} class="name"{{end}}>{{$c}}</td>{{end}}</tr>
{{end}}</tbody>
</table>
<p class="meta">Differences are loss − reference per case; 95% CI from the t distribution; p from the two-sided Wilcoxon signed-rank test with zero differences dropped. <a href="{{.CSV}}">CSV</a></p>
{{end}}{{end}}
{{if .Plots}}<h2 id="plots">Plots</h2>
{{range .Plots}}<figure class="plot">
{{with .Title}}<h3>{{.}}</h3>{{end}}<img src="{{.Src}}" alt="{{.Title}}">
<figcaption>{{.Caption}}{{range .Alt}} <a href="{{.Href}}">{{.Label}}</a>{{end}}</figcaption>
</figure>
{{end}}{{end}}
{{if .Cases}}<h2 id="cases">Cases</h2>
{{range .Cases}}<section class="case"><h3>Case {{.ID}}</h3>
{{range .Images}}<figure><img src="{{.Src}}" alt="case figure {{.Title}}">
<figcaption>{{.Title}}{{with .Caption}} — {{.}}{{end}}{{range .Alt}} <a href="{{.Href}}">{{.Label}}</a>{{end}}</figcaption></figure>
{{end}}</section>
{{end}}{{end}}
{{if .Runs}}<h2 id="runs">Runs</h2>
{{range .Runs}}<details class="run"><summary>{{.Name}}</summary>
{{with .Dir}}<p class="meta">{{.}}</p>{{end}}<pre>{{.Config}}</pre>
</details>
{{end}}{{end}}
</body>
</html>
`))
