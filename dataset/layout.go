package dataset

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/fess-seg/fess/errs"
)

// The dataset layouts Detect recognises (docs/data.md).
const (
	// BraTS 2015/2016: per-case directories holding one sub-directory per
	// modality, each with one MetaImage, e.g.
	// brats_2013_pat0001_1/VSD.Brain.XX.O.MR_Flair.54512/VSD.Brain.XX.O.MR_Flair.54512.mha
	// and the ground truth VSD.Brain_3more.XX.O.OT.54517/….mha.
	// Labels: 1 necrosis, 2 edema, 3 non-enhancing tumour, 4 enhancing tumour.
	LayoutBraTS2015 = "brats2015"
	// BraTS 2017–2021: case directories (flat or under HGG/ and LGG/) with
	// <case>_flair.nii.gz, _t1, _t1ce, _t2 and _seg.nii.gz.
	// Labels: 1 necrotic/non-enhancing core, 2 edema, 4 enhancing tumour.
	LayoutBraTS2017 = "brats2017"
	// BraTS 2023 and later (also 2024): case directories
	// BraTS-GLI-00000-000/BraTS-GLI-00000-000-{t2f,t1c,t1n,t2w,seg}.nii.gz,
	// with the sub-challenge prefixes GLI, MEN, MET, PED and SSA (and the
	// other BraTS-XXX prefixes). Labels: 1 necrotic core, 2 oedema,
	// 3 enhancing tumour.
	LayoutBraTS2023 = "brats2023"
	// nnU-Net v2 raw: DatasetXXX_Name/ with dataset.json (channel_names,
	// labels, regions_class_order, file_ending), imagesTr/CASE_XXXX<ending>
	// (one file per channel), labelsTr/CASE<ending>, optional imagesTs/.
	LayoutNNUNet = "nnunet"
	// Medical Segmentation Decathlon Task01_BrainTumour: imagesTr/*.nii.gz
	// 4-D (FLAIR, T1w, T1gd, T2w), labelsTr/*.nii.gz, dataset.json.
	// Labels: 1 edema, 2 non-enhancing tumour, 3 enhancing tumour.
	LayoutMSD = "msd"
	// AbdomenCT-1K: Case_XXXXX_0000.nii.gz images (anywhere below the
	// root) and Case_XXXXX.nii.gz masks in a directory whose name contains
	// "mask" (Mask/); labels 1 liver, 2 kidney, 3 spleen,
	// 4 pancreas.
	LayoutAbdomenCT1K = "abdomenct1k"
	// The reference's preprocessed arrays: images/*.npy and masks/*.npy,
	// paired by sorted file name.
	LayoutNPY = "npy"
)

// Layouts lists the known layout names.
var Layouts = []string{LayoutBraTS2015, LayoutBraTS2017, LayoutBraTS2023, LayoutMSD, LayoutNNUNet, LayoutAbdomenCT1K, LayoutNPY}

// CaseSource locates one case's files in a raw dataset.
type CaseSource struct {
	// ID names the case uniquely within the dataset (safe as a file name).
	ID string
	// Images maps a modality ("flair", "t1", "t1ce", "t2", "ct" or
	// "image" for .npy) to its file.
	Images map[string]string
	// Frames gives, for 4-D files (MSD), the volume index of each
	// modality within its file; absent means 0.
	Frames map[string]int
	// Label is the ground-truth file ("" if the dataset has none).
	Label string
	// Challenge is the BraTS 2023+ sub-challenge prefix (GLI, MEN, …).
	Challenge string
}

// maxDepth bounds directory walks so that a wrong --in (say, /) fails fast.
const maxDepth = 4

// walkFiles lists regular files below dir up to maxDepth levels deep,
// skipping hidden names (MSD archives carry macOS "._*" files).
func walkFiles(dir string) ([]string, error) {
	var files []string
	var walk func(d string, depth int) error
	walk = func(d string, depth int) error {
		ents, err := os.ReadDir(d)
		if err != nil {
			return errs.WrapInput(d, err, "cannot list directory")
		}
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), ".") {
				continue
			}
			p := filepath.Join(d, e.Name())
			if e.IsDir() {
				if depth < maxDepth {
					if err := walk(p, depth+1); err != nil {
						return err
					}
				}
				continue
			}
			files = append(files, p)
		}
		return nil
	}
	err := walk(dir, 0)
	sort.Strings(files)
	return files, err
}

var (
	reBraTS17   = regexp.MustCompile(`^(.+)_(flair|t1|t1ce|t2|seg)\.nii(\.gz)?$`)
	reBraTS23   = regexp.MustCompile(`^(BraTS-([A-Za-z]+)-\d+-\d+)-(t2f|t1c|t1n|t2w|seg)\.nii(\.gz)?$`)
	reAbdImage  = regexp.MustCompile(`^(Case_\d+)_0000\.nii(\.gz)?$`)
	reAbdMask   = regexp.MustCompile(`^(Case_\d+)\.nii(\.gz)?$`)
	reBraTS15   = regexp.MustCompile(`(?i)\.(MR_Flair|MR_T1c|MR_T1|MR_T2|OT)\.[^/]*\.mha$`)
	niftiSuffix = regexp.MustCompile(`\.nii(\.gz)?$`)
)

// checkDir returns an input error unless dir is a readable, non-empty directory.
func checkDir(dir string) error {
	st, err := os.Stat(dir)
	if err != nil {
		return errs.WrapInput(dir, err, "cannot open dataset directory")
	}
	if !st.IsDir() {
		return errs.Input(dir, "not a directory")
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return errs.WrapInput(dir, err, "cannot list directory")
	}
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), ".") {
			return nil
		}
	}
	return errs.Input(dir, "empty directory, no dataset files")
}

// Detect inspects dir and returns its layout name. The rules, first match
// wins: dataset.json naming channel_names (or file_ending) with imagesTr/ is
// nnU-Net v2; dataset.json with imagesTr/ is MSD; images/ and masks/ holding .npy
// files is npy; a Case_XXXXX_0000.nii[.gz] file is AbdomenCT-1K; a
// *_flair.nii[.gz] file is BraTS 2017; a VSD.*.MR_Flair.*.mha file is BraTS
// 2015. An empty or unrecognised directory is an input error.
func Detect(dir string) (string, error) {
	if err := checkDir(dir); err != nil {
		return "", err
	}
	if isFile(filepath.Join(dir, "dataset.json")) && isDir(filepath.Join(dir, "imagesTr")) {
		var probe struct {
			ChannelNames map[string]any `json:"channel_names"`
			FileEnding   *string        `json:"file_ending"`
		}
		if b, err := os.ReadFile(filepath.Join(dir, "dataset.json")); err == nil && json.Unmarshal(b, &probe) == nil &&
			(probe.ChannelNames != nil || probe.FileEnding != nil) {
			return LayoutNNUNet, nil
		}
		return LayoutMSD, nil
	}
	if isDir(filepath.Join(dir, "images")) && isDir(filepath.Join(dir, "masks")) {
		if m, _ := filepath.Glob(filepath.Join(dir, "images", "*.npy")); len(m) > 0 {
			return LayoutNPY, nil
		}
	}
	files, err := walkFiles(dir)
	if err != nil {
		return "", err
	}
	var abd, b17, b15, b23 bool
	for _, f := range files {
		b := filepath.Base(f)
		if reAbdImage.MatchString(b) {
			abd = true
		}
		if m := reBraTS17.FindStringSubmatch(b); m != nil && m[2] == "flair" {
			b17 = true
		}
		if m := reBraTS23.FindStringSubmatch(b); m != nil && m[3] == "t2f" {
			b23 = true
		}
		if m := reBraTS15.FindStringSubmatch(f); m != nil && strings.EqualFold(m[1], "MR_Flair") {
			b15 = true
		}
	}
	switch {
	case abd:
		return LayoutAbdomenCT1K, nil
	case b23:
		return LayoutBraTS2023, nil
	case b17:
		return LayoutBraTS2017, nil
	case b15:
		return LayoutBraTS2015, nil
	}
	return "", errs.Input(dir, "unknown dataset layout: found none of MSD (dataset.json + imagesTr/), "+
		"nnU-Net v2 (dataset.json with channel_names + imagesTr/), npy (images/*.npy + masks/*.npy), "+
		"AbdomenCT-1K (Case_XXXXX_0000.nii.gz), BraTS 2023 (BraTS-GLI-*-t2f.nii.gz), BraTS 2017 (*_flair.nii.gz) or BraTS 2015 (VSD.*.MR_Flair.*.mha); use --layout to name it")
}

func isFile(p string) bool { st, err := os.Stat(p); return err == nil && st.Mode().IsRegular() }
func isDir(p string) bool  { st, err := os.Stat(p); return err == nil && st.IsDir() }

// Scan lists the cases of the dataset at dir in the given layout, sorted by
// ID. Every case has at least one image; cases without a label keep Label
// empty (preparation rejects them). A dataset with no case is an input error.
func Scan(dir, layout string) ([]CaseSource, error) {
	cases, _, err := scan(dir, layout)
	return cases, err
}

// scan is Scan that also returns an nnU-Net data set's dataset.json.
func scan(dir, layout string) ([]CaseSource, *nnunetMeta, error) {
	if err := checkDir(dir); err != nil {
		return nil, nil, err
	}
	var cases []CaseSource
	var meta *nnunetMeta
	var err error
	switch layout {
	case LayoutBraTS2023:
		cases, err = scanBraTS23(dir)
	case LayoutNNUNet:
		cases, meta, err = scanNNUNet(dir)
	case LayoutBraTS2017:
		cases, err = scanBraTS17(dir)
	case LayoutBraTS2015:
		cases, err = scanBraTS15(dir)
	case LayoutMSD:
		cases, err = scanMSD(dir)
	case LayoutAbdomenCT1K:
		cases, err = scanAbdomen(dir)
	case LayoutNPY:
		cases, err = scanNPY(dir)
	default:
		return nil, nil, errs.Usage("unknown layout %q (want auto or one of %s)", layout, strings.Join(Layouts, ", "))
	}
	if err != nil {
		return nil, nil, err
	}
	if len(cases) == 0 {
		return nil, nil, errs.Input(dir, "no cases found for layout %s", layout)
	}
	sort.Slice(cases, func(i, j int) bool { return cases[i].ID < cases[j].ID })
	return cases, meta, nil
}

// brats23Modality maps the BraTS 2023 file suffixes to the names used here.
var brats23Modality = map[string]string{"t2f": "flair", "t1n": "t1", "t1c": "t1ce", "t2w": "t2"}

func scanBraTS23(dir string) ([]CaseSource, error) {
	files, err := walkFiles(dir)
	if err != nil {
		return nil, err
	}
	set := newCaseSet(dir)
	for _, f := range files {
		m := reBraTS23.FindStringSubmatch(filepath.Base(f))
		if m == nil {
			continue
		}
		c := set.get(filepath.Join(filepath.Dir(f), m[1]))
		c.Challenge = strings.ToUpper(m[2])
		if m[3] == "seg" {
			c.Label = f
		} else {
			c.Images[brats23Modality[m[3]]] = f
		}
	}
	return set.list(), nil
}

// caseSet collects cases keyed by their directory (or stem) and gives each a
// unique ID: the base name, or the path relative to the root joined by "_"
// where base names collide (BraTS 2015 repeats names under HGG/ and LGG/).
type caseSet struct {
	root  string
	order []string
	byKey map[string]*CaseSource
}

func newCaseSet(root string) *caseSet { return &caseSet{root: root, byKey: map[string]*CaseSource{}} }

func (s *caseSet) get(key string) *CaseSource {
	c, ok := s.byKey[key]
	if !ok {
		c = &CaseSource{Images: map[string]string{}}
		s.byKey[key] = c
		s.order = append(s.order, key)
	}
	return c
}

func (s *caseSet) list() []CaseSource {
	count := map[string]int{}
	for _, k := range s.order {
		count[filepath.Base(k)]++
	}
	out := make([]CaseSource, 0, len(s.order))
	for _, k := range s.order {
		c := s.byKey[k]
		id := filepath.Base(k)
		if count[id] > 1 {
			if rel, err := filepath.Rel(s.root, k); err == nil {
				id = strings.ReplaceAll(filepath.ToSlash(rel), "/", "_")
			}
		}
		c.ID = safeID(id)
		if len(c.Images) > 0 {
			out = append(out, *c)
		}
	}
	return out
}

// safeID replaces characters that do not belong in a file name.
func safeID(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-', r == '.':
			return r
		}
		return '_'
	}, s)
}

func scanBraTS17(dir string) ([]CaseSource, error) {
	files, err := walkFiles(dir)
	if err != nil {
		return nil, err
	}
	set := newCaseSet(dir)
	for _, f := range files {
		m := reBraTS17.FindStringSubmatch(filepath.Base(f))
		if m == nil {
			continue
		}
		c := set.get(filepath.Dir(f))
		if m[2] == "seg" {
			c.Label = f
		} else {
			c.Images[m[2]] = f
		}
	}
	return set.list(), nil
}

func scanBraTS15(dir string) ([]CaseSource, error) {
	files, err := walkFiles(dir)
	if err != nil {
		return nil, err
	}
	set := newCaseSet(dir)
	mod := map[string]string{"mr_flair": "flair", "mr_t1": "t1", "mr_t1c": "t1ce", "mr_t2": "t2"}
	for _, f := range files {
		m := reBraTS15.FindStringSubmatch(f)
		if m == nil {
			continue
		}
		// The case directory is the parent of the per-modality directory
		// (or the file's own directory when the .mha files lie flat).
		caseDir := filepath.Dir(f)
		if strings.Contains(filepath.Base(caseDir), "VSD.") {
			caseDir = filepath.Dir(caseDir)
		}
		c := set.get(caseDir)
		if k := strings.ToLower(m[1]); k == "ot" {
			c.Label = f
		} else {
			c.Images[mod[k]] = f
		}
	}
	return set.list(), nil
}

// msdModalities is Task01_BrainTumour's channel order, used when
// dataset.json does not say.
var msdModalities = map[string]int{"flair": 0, "t1": 1, "t1ce": 2, "t2": 3}

func scanMSD(dir string) ([]CaseSource, error) {
	frames := map[string]int{}
	for k, v := range msdModalities {
		frames[k] = v
	}
	js := filepath.Join(dir, "dataset.json")
	if b, err := os.ReadFile(js); err == nil {
		var meta struct {
			Modality map[string]string `json:"modality"`
		}
		if err := json.Unmarshal(b, &meta); err != nil {
			return nil, errs.WrapInput(js, err, "invalid JSON")
		}
		if len(meta.Modality) > 0 {
			frames = map[string]int{}
			for k, name := range meta.Modality {
				var idx int
				if _, err := fmt.Sscan(k, &idx); err != nil {
					return nil, errs.Input(js, "modality key %q is not a channel number", k)
				}
				frames[msdModalityName(name)] = idx
			}
		}
	}
	imgs, err := filepath.Glob(filepath.Join(dir, "imagesTr", "*.nii*"))
	if err != nil {
		return nil, err
	}
	var cases []CaseSource
	for _, f := range imgs {
		b := filepath.Base(f)
		if strings.HasPrefix(b, ".") || !niftiSuffix.MatchString(b) {
			continue
		}
		c := CaseSource{ID: safeID(niftiSuffix.ReplaceAllString(b, "")), Images: map[string]string{}, Frames: map[string]int{}}
		for m, t := range frames {
			c.Images[m] = f
			c.Frames[m] = t
		}
		if l := filepath.Join(dir, "labelsTr", b); isFile(l) {
			c.Label = l
		}
		cases = append(cases, c)
	}
	return cases, nil
}

// msdModalityName maps dataset.json modality names (FLAIR, T1w, t1gd, T2w)
// to the names used here.
func msdModalityName(s string) string {
	switch strings.ToLower(s) {
	case "flair":
		return "flair"
	case "t1w", "t1":
		return "t1"
	case "t1gd", "t1ce", "t1c":
		return "t1ce"
	case "t2w", "t2":
		return "t2"
	}
	return strings.ToLower(s)
}

func scanAbdomen(dir string) ([]CaseSource, error) {
	files, err := walkFiles(dir)
	if err != nil {
		return nil, err
	}
	masks := map[string]string{}
	var cases []CaseSource
	for _, f := range files {
		b := filepath.Base(f)
		if m := reAbdImage.FindStringSubmatch(b); m != nil {
			cases = append(cases, CaseSource{ID: m[1], Images: map[string]string{"ct": f}})
		} else if m := reAbdMask.FindStringSubmatch(b); m != nil &&
			strings.Contains(strings.ToLower(filepath.Base(filepath.Dir(f))), "mask") {
			masks[m[1]] = f
		}
	}
	for i := range cases {
		cases[i].Label = masks[cases[i].ID]
	}
	return cases, nil
}

func scanNPY(dir string) ([]CaseSource, error) {
	imgs, _ := filepath.Glob(filepath.Join(dir, "images", "*.npy"))
	msks, _ := filepath.Glob(filepath.Join(dir, "masks", "*.npy"))
	sort.Strings(imgs)
	sort.Strings(msks)
	if len(msks) > 0 && len(msks) != len(imgs) {
		return nil, errs.Input(filepath.Join(dir, "masks"), "%d masks for %d images in %s (npy pairs by sorted name)",
			len(msks), len(imgs), filepath.Join(dir, "images"))
	}
	cases := make([]CaseSource, len(imgs))
	for i, f := range imgs {
		cases[i] = CaseSource{ID: safeID(strings.TrimSuffix(filepath.Base(f), ".npy")), Images: map[string]string{"image": f}}
		if len(msks) > 0 {
			cases[i].Label = msks[i]
		}
	}
	return cases, nil
}
