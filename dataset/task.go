package dataset

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/fess-seg/fess/errs"
)

// Label conventions (docs/data.md has the table). A convention says which
// raw label values make up each named region, which values may occur at
// all, and so how a prediction is written back as a label map.
const (
	// ConvBraTS2021 is BraTS 2015–2021: 1 necrotic / non-enhancing core,
	// 2 oedema, 4 enhancing tumour (2015/2016 also use 3, non-enhancing
	// tumour, which belongs to the core). WT 1,2,3,4; TC 1,3,4; ET 4.
	ConvBraTS2021 = "brats2021"
	// ConvBraTS2023 is BraTS 2023 and later: 1 necrotic core, 2 oedema,
	// 3 enhancing tumour. WT 1,2,3; TC 1,3; ET 3.
	ConvBraTS2023 = "brats2023"
	// ConvMSD is the Medical Segmentation Decathlon's Task01 (and nnU-Net's
	// Dataset001): 1 oedema, 2 non-enhancing tumour, 3 enhancing tumour.
	// WT 1,2,3; TC 2,3; ET 3.
	ConvMSD = "msd"
	// ConvAbdomen is AbdomenCT-1K: 1 liver, 2 kidney, 3 spleen, 4 pancreas.
	ConvAbdomen = "abdomenct1k"
	// ConvBinary is any other label map: the foreground is every label > 0
	// and label values may be named only by number.
	ConvBinary = "binary"
	// ConvNNUNet means the labels named in an nnU-Net dataset.json.
	ConvNNUNet = "nnunet"
)

// Conventions lists the conventions --convention accepts.
var Conventions = []string{ConvBraTS2021, ConvBraTS2023, ConvMSD, ConvAbdomen, ConvBinary}

// convention is the resolved meaning of label values for one data set.
type convention struct {
	name string
	// regions maps a region or class name to its label values.
	regions map[string][]int
	// order lists the names of regions in their natural order (the
	// default target list and the order of a label-map's values).
	order []string
	// known lists the label values that may occur (nil: any ≥ 0).
	known []int
	// paint, when set, gives the value a region is written back with
	// (nnU-Net's regions_class_order); else PaintValues derives it.
	paint map[string]int
}

var builtinConventions = map[string]convention{
	ConvBraTS2021: {name: ConvBraTS2021, regions: map[string][]int{"wt": {1, 2, 3, 4}, "tc": {1, 3, 4}, "et": {4}},
		order: []string{"wt", "tc", "et"}, known: []int{0, 1, 2, 3, 4}},
	ConvBraTS2023: {name: ConvBraTS2023, regions: map[string][]int{"wt": {1, 2, 3}, "tc": {1, 3}, "et": {3}},
		order: []string{"wt", "tc", "et"}, known: []int{0, 1, 2, 3}},
	ConvMSD: {name: ConvMSD, regions: map[string][]int{"wt": {1, 2, 3}, "tc": {2, 3}, "et": {3}},
		order: []string{"wt", "tc", "et"}, known: []int{0, 1, 2, 3}},
	ConvAbdomen: {name: ConvAbdomen, regions: map[string][]int{"liver": {1}, "kidney": {2}, "spleen": {3}, "pancreas": {4}},
		order: []string{"liver", "kidney", "spleen", "pancreas"}, known: []int{0, 1, 2, 3, 4}},
	ConvBinary: {name: ConvBinary, regions: map[string][]int{}},
}

// defaultConvention is the convention a layout implies.
func defaultConvention(layout string) string {
	switch layout {
	case LayoutBraTS2015, LayoutBraTS2017:
		return ConvBraTS2021
	case LayoutBraTS2023:
		return ConvBraTS2023
	case LayoutMSD:
		return ConvMSD
	case LayoutAbdomenCT1K:
		return ConvAbdomen
	case LayoutNNUNet:
		return ConvNNUNet
	}
	return ConvBinary
}

// Region is one output channel: a sigmoid region (the union of its label
// values) or a softmax class.
type Region struct {
	Name string `json:"name"`
	// Labels are the raw label values of the region; nil means every
	// label > 0.
	Labels []int `json:"labels"`
	// Paint is the value the region is written back with in a label map.
	Paint int `json:"paint"`
}

// Task is what a prepared data set asks the network to do: which input
// channels, which output regions or classes, in which label convention.
type Task struct {
	// Channels are the input modalities in channel order.
	Channels []string `json:"channels"`
	// Frames gives, per channel, the volume index in a 4-D source file
	// (MSD); absent or 0 for 3-D files.
	Frames []int `json:"frames,omitempty"`
	// Regions are the output channels. With Softmax they are mutually
	// exclusive classes (the network adds a background channel 0);
	// otherwise independent sigmoid regions.
	Regions []Region `json:"regions"`
	Softmax bool     `json:"softmax,omitempty"`
	// Convention names the label convention the regions were read in, and
	// the one predictions are written back in.
	Convention string `json:"convention"`
	// Challenge is the BraTS 2023+ sub-challenge (GLI, MEN, MET, PED, SSA)
	// when the layout names one; it sets the lesion-wise metric options.
	Challenge string `json:"challenge,omitempty"`
	// Known lists the label values that may occur in a label map (nil:
	// any); others are an error.
	Known []int `json:"known_labels,omitempty"`
}

// RegionNames returns the names of t's regions in order.
func (t Task) RegionNames() []string {
	out := make([]string, len(t.Regions))
	for i, r := range t.Regions {
		out[i] = r.Name
	}
	return out
}

// Binary says whether t is the paper's setting: one sigmoid output.
func (t Task) Binary() bool { return len(t.Regions) == 1 && !t.Softmax }

// OutChannels is the number of network outputs: one per region, plus the
// background for softmax classes.
func (t Task) OutChannels() int {
	if t.Softmax {
		return len(t.Regions) + 1
	}
	return len(t.Regions)
}

// IsBraTS says whether the regions are read in a BraTS-like brain
// convention (lesion-wise metrics apply).
func (t Task) IsBraTS() bool {
	switch t.Convention {
	case ConvBraTS2021, ConvBraTS2023, ConvMSD:
		return true
	}
	return false
}

// splitList splits a comma list, trimming spaces and dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// modalityAliases maps other spellings of the BraTS modalities to the
// names used here: the BraTS 2023 names, MSD's and nnU-Net's channel names.
var modalityAliases = map[string]string{
	"flair": "flair", "t2f": "flair", "t2-flair": "flair",
	"t1": "t1", "t1n": "t1", "t1w": "t1", "native": "t1",
	"t1ce": "t1ce", "t1c": "t1ce", "t1gd": "t1ce", "t1-ce": "t1ce",
	"t2": "t2", "t2w": "t2",
	"ct": "ct", "image": "image",
}

// CanonicalModality returns the name used here for a modality name.
func CanonicalModality(s string) string {
	l := strings.ToLower(strings.TrimSpace(s))
	if c, ok := modalityAliases[l]; ok {
		return c
	}
	return l
}

// ParseModalities turns --modalities (a comma list in channel order) into
// canonical names. Duplicates are an error.
func ParseModalities(s string) ([]string, error) {
	var out []string
	for _, f := range splitList(s) {
		c := CanonicalModality(f)
		if slices.Contains(out, c) {
			return nil, errs.Usage("--modalities %q names %s twice", s, c)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errs.Usage("--modalities %q names no channel", s)
	}
	return out, nil
}

// resolveConvention returns the convention for opts on layout, with meta
// the nnU-Net dataset.json (nil for other layouts).
func resolveConvention(layout, name string, meta *nnunetMeta) (convention, error) {
	if name == "" || name == "auto" {
		name = defaultConvention(layout)
	}
	if name == ConvNNUNet {
		if meta == nil {
			return convention{}, errs.Usage("--convention nnunet needs an nnU-Net data set (dataset.json with channel_names)")
		}
		return meta.convention(), nil
	}
	c, ok := builtinConventions[name]
	if !ok {
		return convention{}, errs.Usage("--convention %q: want one of %s", name, strings.Join(Conventions, ", "))
	}
	if meta != nil {
		// An nnU-Net data set read in a named convention keeps its own
		// region names too (e.g. "whole tumor").
		nc := meta.convention()
		c.regions = maps2(c.regions, nc.regions)
	}
	return c, nil
}

func maps2(a, b map[string][]int) map[string][]int {
	out := map[string][]int{}
	for k, v := range b {
		out[k] = v
	}
	for k, v := range a {
		out[k] = v
	}
	return out
}

// normName folds a region name for lookup: lower case, spaces and dashes
// as underscores.
func normName(s string) string {
	return strings.NewReplacer(" ", "_", "-", "_").Replace(strings.ToLower(strings.TrimSpace(s)))
}

func (c convention) lookup(name string) ([]int, bool) {
	n := normName(name)
	for k, v := range c.regions {
		if normName(k) == n {
			return v, true
		}
	}
	// nnU-Net's BraTS region names and the short names.
	alias := map[string]string{"whole_tumor": "wt", "whole_tumour": "wt", "tumor_core": "tc", "tumour_core": "tc",
		"enhancing_tumor": "et", "enhancing_tumour": "et", "wt": "whole_tumor", "tc": "tumor_core", "et": "enhancing_tumor"}
	if a, ok := alias[n]; ok {
		for k, v := range c.regions {
			if normName(k) == a {
				return v, true
			}
		}
	}
	return nil, false
}

// parseLabelUnion parses "1" or "1+4" into label values.
func parseLabelUnion(s string) ([]int, bool) {
	var out []int
	for _, f := range strings.Split(s, "+") {
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || v < 0 {
			return nil, false
		}
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	sort.Ints(out)
	return out, len(out) > 0
}

// resolveTask turns the options' --target / --classes into regions.
func resolveTask(opts Options, meta *nnunetMeta, challenge string) (Task, error) {
	conv, err := resolveConvention(opts.Layout, opts.Convention, meta)
	if err != nil {
		return Task{}, err
	}
	chans, err := ParseModalities(opts.Modality)
	if err != nil {
		return Task{}, err
	}
	t := Task{Channels: chans, Convention: conv.name, Challenge: challenge, Known: conv.known}
	if opts.Classes != "" && opts.Target != "" && opts.Target != defaultTarget(opts.Layout) {
		return Task{}, errs.Usage("--target %s and --classes %s: give one (regions are sigmoid outputs, classes softmax)", opts.Target, opts.Classes)
	}
	spec := opts.Target
	if opts.Classes != "" {
		spec, t.Softmax = opts.Classes, true
	}
	if spec == "all" {
		// Every region of the convention, in its order (nnU-Net: the
		// dataset's own labels; lists are regions, values classes).
		if len(conv.order) == 0 {
			return Task{}, errs.Usage("--target all: convention %s names no regions", conv.name)
		}
		spec = strings.Join(conv.order, ",")
		if meta != nil && conv.name == ConvNNUNet && !meta.hasRegions() {
			t.Softmax = true
		}
	}
	items := splitList(spec)
	if len(items) == 0 {
		return Task{}, errs.Usage("--target %q names no region", spec)
	}
	// The legacy form: a comma list of label values is one region, their
	// union (write 1+4 for the same, or --classes 1,4 for one class each).
	if !t.Softmax && len(items) > 1 {
		if u, ok := parseLabelUnion(strings.Join(items, "+")); ok {
			t.Regions = []Region{{Name: strings.Join(items, "+"), Labels: u}}
			items = nil
		}
	}
	for _, it := range items {
		r := Region{Name: strings.ToLower(it)}
		switch l := strings.ToLower(it); {
		case l == "any" || (l == "wt" && conv.name == ConvBinary):
			r.Labels = nil
		default:
			if v, ok := conv.lookup(it); ok {
				r.Labels = append([]int(nil), v...)
			} else if v, ok := parseLabelUnion(it); ok {
				r.Labels = v
			} else {
				names := slices.Sorted(func(yield func(string) bool) {
					for k := range conv.regions {
						if !yield(k) {
							return
						}
					}
				})
				flag := "--target"
				if t.Softmax {
					flag = "--classes"
				}
				return Task{}, errs.Usage("%s %s is not defined in convention %s (it has: %s, any, or label values such as 1+4)", flag,
					it, conv.name, strings.Join(names, ", "))
			}
		}
		for _, q := range t.Regions {
			if q.Name == r.Name {
				return Task{}, errs.Usage("target %q is named twice", it)
			}
		}
		if conv.known != nil {
			for _, v := range r.Labels {
				if !slices.Contains(conv.known, v) {
					return Task{}, errs.Usage("target %q: label %d does not occur in convention %s (labels %v)", it, v, conv.name, conv.known[1:])
				}
			}
		}
		t.Regions = append(t.Regions, r)
	}
	if t.Softmax {
		if len(t.Regions) < 1 {
			return Task{}, errs.Usage("--classes %q names no class", opts.Classes)
		}
		seen := map[int]string{}
		for _, r := range t.Regions {
			if r.Labels == nil {
				return Task{}, errs.Usage("--classes: %q is every label > 0, not one class", r.Name)
			}
			for _, v := range r.Labels {
				if v == 0 {
					return Task{}, errs.Usage("--classes: %q includes the background label 0", r.Name)
				}
				if o, ok := seen[v]; ok {
					return Task{}, errs.Usage("--classes %s and %s share label %d; classes must be mutually exclusive", o, r.Name, v)
				}
				seen[v] = r.Name
			}
		}
	}
	assignPaint(&t, conv)
	return t, nil
}

// assignPaint sets each region's label-map value. Softmax classes paint
// their smallest label. Sigmoid regions are painted from the largest to
// the smallest label set (nested regions: WT, then TC over it, then ET),
// each with its smallest label that no later-painted region also covers
// (BraTS 2021: WT → 2, TC → 1, ET → 4), unless the convention fixes the
// values (nnU-Net's regions_class_order).
func assignPaint(t *Task, c convention) {
	for i := range t.Regions {
		r := &t.Regions[i]
		if v, ok := c.paint[r.Name]; ok {
			r.Paint = v
			continue
		}
		if r.Labels == nil {
			r.Paint = 1
			continue
		}
		r.Paint = r.Labels[0]
		if t.Softmax {
			continue
		}
		for _, v := range r.Labels {
			covered := false
			for j, q := range t.Regions {
				if j != i && len(q.Labels) < len(r.Labels) && (q.Labels == nil || slices.Contains(q.Labels, v)) {
					covered = true
				}
			}
			if !covered {
				r.Paint = v
				break
			}
		}
	}
}

// PaintOrder returns the region indices in the order a label map is
// painted: larger label sets first, so nested regions overwrite outer ones.
func (t Task) PaintOrder() []int {
	idx := make([]int, len(t.Regions))
	for i := range idx {
		idx[i] = i
	}
	size := func(r Region) int {
		if r.Labels == nil {
			return math.MaxInt
		}
		return len(r.Labels)
	}
	sort.SliceStable(idx, func(a, b int) bool { return size(t.Regions[idx[a]]) > size(t.Regions[idx[b]]) })
	return idx
}

// LabelMap turns per-region 0/1 masks (K masks of n voxels, region-major)
// into a label map in the task's convention: sigmoid regions are painted
// in PaintOrder; softmax classes are exclusive already.
func (t Task) LabelMap(masks [][]uint8) []uint8 {
	n := 0
	if len(masks) > 0 {
		n = len(masks[0])
	}
	out := make([]uint8, n)
	for _, k := range t.PaintOrder() {
		v := uint8(t.Regions[k].Paint)
		for i, b := range masks[k] {
			if b != 0 {
				out[i] = v
			}
		}
	}
	return out
}

// RegionMasks splits a raw label map (values as float32) into one 0/1 mask
// per region. A label value that the convention does not know is an error
// (a BraTS 2023 file read as 2021 would otherwise lose its enhancing
// tumour without a word).
func (t Task) RegionMasks(labels []float32) ([][]uint8, error) {
	known := t.Known
	out := make([][]uint8, len(t.Regions))
	for k := range out {
		out[k] = make([]uint8, len(labels))
	}
	var lut [256]uint16 // bit k set: label value is in region k
	for k, r := range t.Regions {
		if r.Labels == nil {
			for v := 1; v < 256; v++ {
				lut[v] |= 1 << k
			}
			continue
		}
		for _, v := range r.Labels {
			if v < 256 {
				lut[v] |= 1 << k
			}
		}
	}
	for i, f := range labels {
		r := math.Round(float64(f))
		if r < 0 || r > 255 || math.IsNaN(r) || float64(f) != r {
			return nil, fmt.Errorf("label value %g at voxel %d is not an integer in [0, 255]", f, i)
		}
		v := int(r)
		if known != nil && !slices.Contains(known, v) {
			return nil, fmt.Errorf("label value %d does not occur in convention %s (labels %v); pick the right --convention (binary: every label > 0 is foreground)", v, t.Convention, known)
		}
		if bits := lut[v]; bits != 0 {
			for k := range out {
				if bits&(1<<k) != 0 {
					out[k][i] = 1
				}
			}
		}
	}
	return out, nil
}

func defaultTarget(layout string) string {
	switch layout {
	case LayoutAbdomenCT1K, LayoutNPY:
		return "any"
	case LayoutNNUNet:
		return "all"
	}
	return "wt"
}

// LegacyTask is the task of a run or manifest from before tasks existed:
// one channel (o.Modality, at its MSD frame) and one region (o.Target);
// any label value is accepted, as then.
func LegacyTask(o Options) Task {
	o = o.Defaults()
	t := Task{Channels: []string{CanonicalModality(o.Modality)}, Convention: defaultConvention(o.Layout)}
	labels, _ := TargetLabels(o.Layout, o.Target)
	t.Regions = []Region{{Name: o.Target, Labels: labels, Paint: 1}}
	if o.Layout == LayoutMSD {
		t.Frames = []int{modalityFrame(t.Channels[0])}
	}
	return t
}

// InConvention returns t with its regions' label values and paint values
// taken from another built-in convention, by region name (wt, tc, et or an
// organ), for writing predictions in that convention.
func (t Task) InConvention(name string) (Task, error) {
	c, ok := builtinConventions[name]
	if !ok {
		return t, errs.Usage("--convention %q: want one of %s", name, strings.Join(Conventions, ", "))
	}
	out := t
	out.Convention = name
	out.Known = c.known
	out.Regions = make([]Region, len(t.Regions))
	for i, r := range t.Regions {
		v, ok := c.lookup(r.Name)
		if !ok {
			return t, errs.Usage("--convention %s has no region %q (the run predicts %s)", name, r.Name, strings.Join(t.RegionNames(), ", "))
		}
		out.Regions[i] = Region{Name: r.Name, Labels: append([]int(nil), v...)}
	}
	assignPaint(&out, convention{})
	return out, nil
}

// NewTask resolves a target (regions) or classes list in a named
// convention without a data set, for scoring label maps (fess metrics).
func NewTask(target, classes, conventionName string) (Task, error) {
	if conventionName == "" {
		conventionName = ConvBinary
	}
	return resolveTask(Options{Modality: "image", Target: target, Classes: classes, Convention: conventionName}, nil, "")
}
