package main

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"os"
	"slices"
	"strconv"
	"time"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"

	"github.com/vipd/vipd/bench/internal/report"
)

// The chart: one panel per fault (rows) and advert interval (columns);
// in each, a dot per trial for vipd and for keepalived, a box from the
// 25th to the 75th percentile with the median, and the protocol bound as
// a dashed line. Every panel has its own millisecond scale, which need
// not start at zero: differences of a few milliseconds near a bound of
// seconds are what matters.

var (
	colBackground = color.NRGBA{255, 255, 255, 255}
	colText       = color.NRGBA{30, 30, 30, 255}
	colMuted      = color.NRGBA{110, 110, 110, 255}
	colGrid       = color.NRGBA{228, 228, 228, 255}
	colAxis       = color.NRGBA{160, 160, 160, 255}
	colBound      = color.NRGBA{214, 39, 40, 255}
	daemonColours = map[string]color.NRGBA{
		"vipd":       {31, 119, 180, 255},
		"keepalived": {255, 127, 14, 255},
	}
)

const (
	panelW    = 380
	panelH    = 300
	chartTop  = 72 // title and legend
	chartLeft = 10
	chartGap  = 14
	// Inside a panel: room for the title, tick labels and daemon names.
	plotLeft   = 62
	plotRight  = 12
	plotTop    = 24
	plotBottom = 26
	dotRadius  = 3
)

// drawChart draws the outage distributions and writes them as a PNG.
func drawChart(path string, res *outageResults, daemons []string, intervals []time.Duration, trials int) error {
	cols, rows := len(intervals), len(scenarios)
	w := chartLeft*2 + cols*panelW + (cols-1)*chartGap
	h := chartTop + rows*panelH + (rows-1)*chartGap + 10
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Bounds(), image.NewUniform(colBackground), image.Point{}, draw.Src)

	text(img, chartLeft, 18, colText, "Client's longest gap between replies (ms) when the master goes away")
	text(img, chartLeft, 36, colMuted, fmt.Sprintf(
		"%d trials per daemon, probing every 5 ms; VRRPv3, priorities %d/%d; box: 25th-75th percentile, bar: median; each panel has its own scale",
		trials, prioMaster, prioBackup))
	// Legend.
	x := chartLeft
	for _, d := range daemons {
		c := daemonColours[d]
		disc(img, x+4, 54, dotRadius+1, c)
		text(img, x+12, 58, colText, d)
		x += 24 + 7*len(d)
	}
	dashedHLine(img, x, x+28, 54, colBound)
	dashedHLine(img, x, x+28, 55, colBound)
	text(img, x+34, 58, colText, "protocol bound")

	for r := range scenarios {
		for c, iv := range intervals {
			px := chartLeft + c*(panelW+chartGap)
			py := chartTop + r*(panelH+chartGap)
			title := fmt.Sprintf("%s, adverts %v", scenarios[r].short, iv)
			drawPanel(img, image.Rect(px, py, px+panelW, py+panelH), title, res, daemons, iv, r)
		}
	}

	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func drawPanel(img *image.RGBA, box image.Rectangle, title string, res *outageResults, daemons []string, iv time.Duration, si int) {
	// Frame and title.
	rectOutline(img, box, colGrid)
	text(img, box.Min.X+8, box.Min.Y+16, colText, title)
	bl := "bound " + report.Ms(scenarios[si].bound(iv))
	text(img, box.Max.X-8-7*len(bl), box.Min.Y+16, colBound, bl)
	plot := image.Rect(box.Min.X+plotLeft, box.Min.Y+plotTop+6, box.Max.X-plotRight, box.Max.Y-plotBottom)

	bound := msf(scenarios[si].bound(iv))
	series := make([][]float64, len(daemons))
	lo, hi := bound, bound
	for i, d := range daemons {
		for _, g := range res.gaps(outageKey{d, iv, si}) {
			v := msf(g)
			series[i] = append(series[i], v)
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
	}
	span := math.Max(hi-lo, math.Max(0.1*bound, 5))
	mid := (lo + hi) / 2
	lo, hi = mid-span/2, mid+span/2
	pad := 0.12 * span
	ymin, ymax := math.Max(0, lo-pad), hi+pad
	y := func(v float64) int {
		return plot.Max.Y - int(math.Round((v-ymin)/(ymax-ymin)*float64(plot.Dy())))
	}

	// Grid and tick labels.
	step := niceStep((ymax - ymin) / 5)
	for t := math.Ceil(ymin/step) * step; t <= ymax; t += step {
		yy := y(t)
		hLine(img, plot.Min.X, plot.Max.X, yy, colGrid)
		label := strconv.FormatFloat(t, 'f', decimals(step), 64)
		text(img, plot.Min.X-6-7*len(label), yy+4, colMuted, label)
	}
	vLine(img, plot.Min.X, plot.Min.Y, plot.Max.Y, colAxis)
	hLine(img, plot.Min.X, plot.Max.X, plot.Max.Y, colAxis)

	// Bound.
	yb := y(bound)
	dashedHLine(img, plot.Min.X, plot.Max.X, yb, colBound)
	dashedHLine(img, plot.Min.X, plot.Max.X, yb+1, colBound)

	// One column per daemon.
	colW := plot.Dx() / len(daemons)
	for i, d := range daemons {
		c := daemonColours[d]
		cx := plot.Min.X + colW*i + colW/2
		name := d
		if len(series[i]) == 0 {
			name += " (no data)"
		}
		text(img, cx-7*len(name)/2, plot.Max.Y+18, colText, name)
		s := slices.Clone(series[i])
		if len(s) == 0 {
			continue
		}
		slices.Sort(s)
		// Box and median.
		q1, med, q3 := quantile(s, 0.25), quantile(s, 0.5), quantile(s, 0.75)
		half := colW / 4
		light := c
		light.A = 40
		fillBlend(img, image.Rect(cx-half, y(q3), cx+half+1, y(q1)+1), light)
		rectOutline(img, image.Rect(cx-half, y(q3), cx+half+1, y(q1)+1), c)
		for k := -1; k <= 1; k++ {
			hLine(img, cx-half-4, cx+half+4, y(med)+k, c)
		}
		// Dots, spread sideways by a fixed shuffle of the trial number
		// so that equal values stay visible.
		dc := c
		dc.A = 170
		for j, v := range series[i] {
			off := 0
			if n := len(series[i]); n > 1 {
				off = (j*37)%n*(2*half-2*dotRadius)/(n-1) - (half - dotRadius)
			}
			disc(img, cx+off, y(v), dotRadius, dc)
		}
	}
}

// quantile interpolates linearly between the order statistics of sorted
// values.
func quantile(s []float64, q float64) float64 {
	if len(s) == 1 {
		return s[0]
	}
	pos := q * float64(len(s)-1)
	i := int(pos)
	if i >= len(s)-1 {
		return s[len(s)-1]
	}
	f := pos - float64(i)
	return s[i]*(1-f) + s[i+1]*f
}

// niceStep rounds raw up to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	if raw <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}

// decimals is how many decimals tick labels at step need.
func decimals(step float64) int {
	if step >= 1 {
		return 0
	}
	return int(math.Ceil(-math.Log10(step)))
}

func text(img *image.RGBA, x, y int, c color.Color, s string) {
	d := font.Drawer{Dst: img, Src: image.NewUniform(c), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}

// blend paints c over the pixel at x, y.
func blend(img *image.RGBA, x, y int, c color.NRGBA) {
	if !(image.Point{x, y}.In(img.Rect)) {
		return
	}
	i := img.PixOffset(x, y)
	a := uint32(c.A)
	for k, v := range []uint8{c.R, c.G, c.B} {
		img.Pix[i+k] = uint8((uint32(v)*a + uint32(img.Pix[i+k])*(255-a)) / 255)
	}
	img.Pix[i+3] = 255
}

func fillBlend(img *image.RGBA, r image.Rectangle, c color.NRGBA) {
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			blend(img, x, y, c)
		}
	}
}

func hLine(img *image.RGBA, x0, x1, y int, c color.NRGBA) {
	for x := x0; x <= x1; x++ {
		blend(img, x, y, c)
	}
}

func vLine(img *image.RGBA, x, y0, y1 int, c color.NRGBA) {
	for y := y0; y <= y1; y++ {
		blend(img, x, y, c)
	}
}

func dashedHLine(img *image.RGBA, x0, x1, y int, c color.NRGBA) {
	for x := x0; x <= x1; x++ {
		if (x-x0)%10 < 6 {
			blend(img, x, y, c)
		}
	}
}

func rectOutline(img *image.RGBA, r image.Rectangle, c color.NRGBA) {
	hLine(img, r.Min.X, r.Max.X-1, r.Min.Y, c)
	hLine(img, r.Min.X, r.Max.X-1, r.Max.Y-1, c)
	vLine(img, r.Min.X, r.Min.Y+1, r.Max.Y-2, c)
	vLine(img, r.Max.X-1, r.Min.Y+1, r.Max.Y-2, c)
}

func disc(img *image.RGBA, cx, cy, r int, c color.NRGBA) {
	for dy := -r; dy <= r; dy++ {
		for dx := -r; dx <= r; dx++ {
			if dx*dx+dy*dy <= r*r+r/2 {
				blend(img, cx+dx, cy+dy, c)
			}
		}
	}
}
