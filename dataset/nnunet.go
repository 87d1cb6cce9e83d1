package dataset

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/fess-seg/fess/errs"
)

// nnunetMeta is the part of an nnU-Net v2 dataset.json that preparation
// reads: channel_names (index → name), labels (name → a value, or a list
// of values for a region), regions_class_order, file_ending.
type nnunetMeta struct {
	path       string
	channels   []string // by index
	labelNames []string // non-background names, in file order
	labels     map[string][]int
	isRegion   map[string]bool
	order      []int // regions_class_order, per non-background label
	fileEnding string
}

// readNNUNetMeta reads and checks dir/dataset.json. Every fault names the
// file and the field.
func readNNUNetMeta(dir string) (*nnunetMeta, error) {
	p := filepath.Join(dir, "dataset.json")
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, errs.WrapInput(p, err, "cannot read")
	}
	var raw struct {
		ChannelNames      map[string]string `json:"channel_names"`
		Modality          map[string]string `json:"modality"`
		Labels            json.RawMessage   `json:"labels"`
		RegionsClassOrder []int             `json:"regions_class_order"`
		FileEnding        string            `json:"file_ending"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, errs.WrapInput(p, err, "invalid dataset.json")
	}
	m := &nnunetMeta{path: p, labels: map[string][]int{}, isRegion: map[string]bool{}, fileEnding: raw.FileEnding}
	ch := raw.ChannelNames
	if len(ch) == 0 {
		ch = raw.Modality // nnU-Net v1 spelling
	}
	if len(ch) == 0 {
		return nil, errs.Input(p, `missing "channel_names" (index → modality name)`)
	}
	m.channels = make([]string, len(ch))
	for k, name := range ch {
		i, err := strconv.Atoi(k)
		if err != nil || i < 0 || i >= len(ch) {
			return nil, errs.Input(p, `"channel_names" key %q: want the channel indices 0..%d`, k, len(ch)-1)
		}
		c := CanonicalModality(name)
		if c == "" {
			return nil, errs.Input(p, `"channel_names" %q has an empty name`, k)
		}
		m.channels[i] = c
	}
	seen := map[string]int{}
	for i, c := range m.channels {
		if j, ok := seen[c]; ok {
			return nil, errs.Input(p, `"channel_names" %d and %d are both %s`, j, i, c)
		}
		seen[c] = i
	}
	if m.fileEnding == "" {
		return nil, errs.Input(p, `missing "file_ending" (e.g. ".nii.gz")`)
	}
	if !strings.HasPrefix(m.fileEnding, ".") {
		return nil, errs.Input(p, `"file_ending" %q must start with a dot`, m.fileEnding)
	}
	if len(raw.Labels) == 0 {
		return nil, errs.Input(p, `missing "labels" (name → label value or list of values)`)
	}
	// Keep the file's order of the labels: decode the object token by token.
	dec := json.NewDecoder(strings.NewReader(string(raw.Labels)))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, errs.Input(p, `"labels" must be an object of name → value`)
	}
	bg := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, errs.WrapInput(p, err, `bad "labels"`)
		}
		name := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, errs.WrapInput(p, err, `bad "labels" entry %q`, name)
		}
		var one int
		var list []int
		switch {
		case json.Unmarshal(v, &one) == nil:
			list = []int{one}
		case json.Unmarshal(v, &list) == nil && len(list) > 0:
			m.isRegion[name] = true
		default:
			return nil, errs.Input(p, `"labels" entry %q is %s: want a label value or a non-empty list of values`, name, string(v))
		}
		for _, x := range list {
			if x < 0 || x > 255 {
				return nil, errs.Input(p, `"labels" entry %q has value %d outside [0, 255]`, name, x)
			}
		}
		if len(list) == 1 && list[0] == 0 && !m.isRegion[name] {
			bg = true
			continue
		}
		for _, x := range list {
			if x == 0 {
				return nil, errs.Input(p, `"labels" entry %q includes the background value 0`, name)
			}
		}
		if _, dup := m.labels[name]; dup {
			return nil, errs.Input(p, `"labels" names %q twice`, name)
		}
		m.labels[name] = list
		m.labelNames = append(m.labelNames, name)
	}
	if !bg {
		return nil, errs.Input(p, `"labels" has no "background": 0`)
	}
	if len(m.labelNames) == 0 {
		return nil, errs.Input(p, `"labels" has no foreground label`)
	}
	if m.hasRegions() {
		if len(raw.RegionsClassOrder) != len(m.labelNames) {
			return nil, errs.Input(p, `"regions_class_order" has %d values for %d regions in "labels"`, len(raw.RegionsClassOrder), len(m.labelNames))
		}
		m.order = raw.RegionsClassOrder
	}
	return m, nil
}

func (m *nnunetMeta) hasRegions() bool { return len(m.isRegion) > 0 }

// convention exposes the dataset's labels as a convention: each name is a
// region (or class), in file order; regions paint regions_class_order.
func (m *nnunetMeta) convention() convention {
	c := convention{name: ConvNNUNet, regions: map[string][]int{}, paint: map[string]int{}, known: []int{0}}
	for i, n := range m.labelNames {
		c.regions[n] = m.labels[n]
		for _, v := range m.labels[n] {
			if !slices.Contains(c.known, v) {
				c.known = append(c.known, v)
			}
		}
		slices.Sort(c.known)
		c.order = append(c.order, n)
		if m.order != nil {
			c.paint[strings.ToLower(n)] = m.order[i]
		}
	}
	return c
}

// scanNNUNet lists the labelled cases of an nnU-Net v2 raw data set:
// imagesTr/CASE_XXXX<ending> (one file per channel) with
// labelsTr/CASE<ending>. Cases in imagesTs have no label and are not
// listed (fess predict takes them). A case lacking a channel file is an
// error naming the case.
func scanNNUNet(dir string) ([]CaseSource, *nnunetMeta, error) {
	m, err := readNNUNetMeta(dir)
	if err != nil {
		return nil, nil, err
	}
	cases, err := scanNNUNetImages(filepath.Join(dir, "imagesTr"), m)
	if err != nil {
		return nil, nil, err
	}
	for i := range cases {
		l := filepath.Join(dir, "labelsTr", cases[i].ID+m.fileEnding)
		if isFile(l) {
			cases[i].Label = l
		}
	}
	return cases, m, nil
}

// scanNNUNetImages groups CASE_XXXX<ending> files of dir by case.
func scanNNUNetImages(dir string, m *nnunetMeta) ([]CaseSource, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, errs.WrapInput(dir, err, "cannot list the nnU-Net images folder")
	}
	byCase := map[string]map[int]string{}
	for _, e := range ents {
		n := e.Name()
		if strings.HasPrefix(n, ".") || e.IsDir() || !strings.HasSuffix(n, m.fileEnding) {
			continue
		}
		stem := strings.TrimSuffix(n, m.fileEnding)
		u := strings.LastIndexByte(stem, '_')
		if u < 0 || len(stem)-u-1 != 4 {
			return nil, errs.Input(filepath.Join(dir, n), "nnU-Net image names end in _XXXX%s (the channel index)", m.fileEnding)
		}
		ch, err := strconv.Atoi(stem[u+1:])
		if err != nil {
			return nil, errs.Input(filepath.Join(dir, n), "channel suffix %q is not a number", stem[u+1:])
		}
		if ch >= len(m.channels) {
			return nil, errs.Input(filepath.Join(dir, n), "channel %d, but %s names %d channels", ch, m.path, len(m.channels))
		}
		id := stem[:u]
		if byCase[id] == nil {
			byCase[id] = map[int]string{}
		}
		byCase[id][ch] = filepath.Join(dir, n)
	}
	ids := make([]string, 0, len(byCase))
	for id := range byCase {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var out []CaseSource
	for _, id := range ids {
		c := CaseSource{ID: safeID(id), Images: map[string]string{}}
		for i, name := range m.channels {
			f, ok := byCase[id][i]
			if !ok {
				return nil, errs.Input(dir, "case %s has no channel %d (%s) file %s_%04d%s", id, i, name, id, i, m.fileEnding)
			}
			c.Images[name] = f
		}
		out = append(out, c)
	}
	return out, nil
}

// channelFileSuffixes lists, per modality, the file-name endings a case
// folder may use for it (BraTS 2017–2021 and 2023+), for prediction on a
// case folder.
var channelFileSuffixes = map[string][]string{
	"flair": {"_flair", "-t2f"},
	"t1":    {"_t1", "-t1n"},
	"t1ce":  {"_t1ce", "-t1c"},
	"t2":    {"_t2", "-t2w"},
}

// FindChannelFiles finds, in a case folder of the BraTS layouts, the file
// of each channel. A missing channel is an input error naming the folder.
func FindChannelFiles(dir string, channels []string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, errs.WrapInput(dir, err, "cannot list the case folder")
	}
	out := make([]string, len(channels))
	for i, ch := range channels {
		for _, e := range ents {
			stem := niftiSuffix.ReplaceAllString(e.Name(), "")
			if stem == e.Name() || strings.HasPrefix(e.Name(), ".") {
				continue
			}
			for _, suf := range channelFileSuffixes[ch] {
				if strings.HasSuffix(stem, suf) {
					out[i] = filepath.Join(dir, e.Name())
				}
			}
			if len(channels) > 0 && strings.HasSuffix(stem, fmt.Sprintf("_%04d", i)) && out[i] == "" {
				out[i] = filepath.Join(dir, e.Name())
			}
		}
		if out[i] == "" {
			return nil, errs.Input(dir, "no %s image in the case folder (want a file ending in %s.nii.gz)", ch, strings.Join(channelFileSuffixes[ch], " or "))
		}
	}
	return out, nil
}
