package dataset

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/fess-seg/fess/internal/atomicio"
	"github.com/fess-seg/fess/internal/progress"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/fess-seg/fess/errs"
	"github.com/fess-seg/fess/volume"
)

// ManifestVersion is the format version of manifest.json.
const ManifestVersion = 1

// ManifestName is the manifest's file name inside a prepared directory.
const ManifestName = "manifest.json"

// Manifest describes a prepared data set: the options it was made with, the
// source it came from, and every case. It is written once by Prepare and
// read by every later stage (train, test, predict).
type Manifest struct {
	Version int     `json:"version"`
	Source  string  `json:"source"`
	Options Options `json:"options"`
	// Fingerprint hashes the source files' paths, sizes and modification
	// times, so a changed source invalidates the cache.
	Fingerprint string `json:"fingerprint"`
	// Task is the resolved channels, regions and convention. Manifests
	// written before it existed read as one channel (Options.Modality)
	// and one region (Options.Target); see Prepared.Task.
	Task  *Task      `json:"task,omitempty"`
	Cases []CaseInfo `json:"cases"`
}

// CaseInfo is one prepared case.
type CaseInfo struct {
	ID string `json:"id"`
	// Split is "train", "val" or "test".
	Split string `json:"split"`
	// SourceImage and SourceFrame locate the modality in the raw data set
	// (SourceFrame is the volume index in a 4-D file); SourceLabel is the
	// raw label file.
	SourceImage string `json:"source_image"`
	SourceFrame int    `json:"source_frame"`
	SourceLabel string `json:"source_label"`
	// SourceImages and SourceFrames are the same for every channel, in
	// channel order (set when there are several channels).
	SourceImages []string `json:"source_images,omitempty"`
	SourceFrames []int    `json:"source_frames,omitempty"`
	// Image and Mask are the prepared files, relative to the prepared
	// directory: float32 S³ image (S×S×S×C for C channels) and uint8 0/1
	// S³ mask (S×S×S×K for K regions or classes).
	Image string `json:"image"`
	Mask  string `json:"mask"`
	// Foreground counts mask voxels equal to 1 (over all regions).
	Foreground int `json:"foreground_voxels"`
	// RegionVoxels counts each region's voxels (several regions only).
	RegionVoxels []int        `json:"region_voxels,omitempty"`
	Geometry     CaseGeometry `json:"geometry"`
	// Challenge is the BraTS 2023+ sub-challenge of the case, if named.
	Challenge string `json:"challenge,omitempty"`
}

// Splits are the split names, in manifest order.
var Splits = []string{"train", "val", "test"}

// Prepare turns the raw data set in dir into a prepared one in out (see the
// package documentation for the steps). If out already holds a manifest
// made with the same options from the same source files, and its case files
// exist, nothing is redone and cached is true (a new fold count only
// rewrites splits.json and the manifest, each atomically). Cases are
// prepared by opts.Workers goroutines; the output does not depend on their
// number. Otherwise the whole data set is written into a staging folder and
// swapped in for out when complete (see prepare_stage.go), so a failed,
// killed or concurrent run never leaves a mix of two preparations under
// out, and a failed one leaves the old data set as it was. Staging folders
// of dead runs are removed first (RemoveStaleStaging, noted on
// opts.Progress). Callers that may run concurrently should hold out's lock
// (package internal/lock), as fess prepare does.
func Prepare(dir, out string, opts Options) (m *Manifest, cached bool, err error) {
	if dir, err = filepath.Abs(dir); err != nil {
		return nil, false, err
	}
	if out, err = outPath(out); err != nil {
		return nil, false, err
	}
	if st, err := os.Stat(out); err == nil && !st.IsDir() {
		return nil, false, errs.Input(out, "is not a folder")
	}
	if opts.Layout == "" || opts.Layout == "auto" {
		if opts.Layout, err = Detect(dir); err != nil {
			return nil, false, err
		}
	}
	opts = opts.Defaults()
	if err := opts.Validate(); err != nil {
		return nil, false, err
	}
	sources, meta, err := scan(dir, opts.Layout)
	if err != nil {
		return nil, false, err
	}
	if opts.Layout == LayoutNNUNet && opts.Modality == "" {
		opts.Modality = strings.Join(meta.channels, ",")
	}
	challenge := ""
	for _, c := range sources {
		if c.Challenge != "" {
			if challenge != "" && challenge != c.Challenge {
				challenge = "mixed"
			} else if challenge == "" {
				challenge = c.Challenge
			}
		}
	}
	if challenge == "mixed" {
		challenge = ""
	}
	task, err := resolveTask(opts, meta, challenge)
	if err != nil {
		return nil, false, err
	}
	for _, ch := range task.Channels {
		task.Frames = append(task.Frames, sources[0].Frames[ch])
	}
	if slices.Max(task.Frames) == 0 {
		task.Frames = nil
	}
	for _, c := range sources {
		for _, ch := range task.Channels {
			if _, ok := c.Images[ch]; !ok {
				return nil, false, errs.Input(dir, "case %s has no %s image (has %v)", c.ID, ch, modalityNames(c))
			}
		}
		if c.Label == "" {
			return nil, false, errs.Input(c.Images[task.Channels[0]], "case %s has no label file", c.ID)
		}
	}
	fp, err := fingerprint(sources, task.Channels)
	if err != nil {
		return nil, false, err
	}
	split := assignSplits(len(sources), opts.Seed, opts.Split)
	if opts.Folds > 0 {
		if err := checkFoldCount(dir, opts.Folds, split); err != nil {
			return nil, false, err
		}
	}
	if err := RemoveStaleStaging(out, opts.Progress); err != nil {
		return nil, false, err
	}
	if old, err := readManifest(out); err == nil && old.Source == dir && old.Fingerprint == fp &&
		sameOptions(old.Options, opts) && filesExist(out, old) {
		// A new fold count only rewrites splits.json and the manifest. With
		// the same count, splits.json is kept (it may have been edited by
		// hand), and written again only if it is missing.
		switch {
		case old.Options.Folds != opts.Folds:
			old.Options.Folds = opts.Folds
			if opts.Folds > 0 {
				if err := writeFolds(out, old); err != nil {
					return nil, false, err
				}
			}
			if err := writeManifest(out, old); err != nil {
				return nil, false, err
			}
		case opts.Folds > 0 && !isFile(filepath.Join(out, SplitsName)):
			if err := writeFolds(out, old); err != nil {
				return nil, false, err
			}
		}
		return old, true, nil
	}
	if opts.SpacingMode == SpacingMedian {
		if opts.Spacing, err = medianSpacing(sources, task, opts.Workers); err != nil {
			return nil, false, err
		}
	}
	st, err := newStage(out)
	if err != nil {
		return nil, false, err
	}
	// Any return before commit removes the staging folder: out is untouched.
	defer st.abort()

	cases := make([]CaseInfo, len(sources))
	caseErr := make([]error, len(sources))
	bar := progress.New(opts.Progress, int64(len(sources)), "prepare")
	jobs := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < opts.Workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				cases[i], caseErr[i] = prepareCase(sources[i], st.dir, opts, task)
				cases[i].Split = split[i]
				bar.Add(1)
			}
		}()
	}
	for i := range sources {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	bar.Finish()
	for _, e := range caseErr {
		if e != nil {
			return nil, false, e
		}
	}
	// A region that selects no voxel in any case would train to nothing.
	for k, r := range task.Regions {
		total := 0
		for _, c := range cases {
			if len(c.RegionVoxels) > k {
				total += c.RegionVoxels[k]
			} else {
				total += c.Foreground
			}
		}
		if total == 0 {
			return nil, false, errs.Input(dir, "target %s (labels %v in convention %s) selects no voxel in any of the %d cases; "+
				"check --target and --convention (BraTS 2023 marks enhancing tumour 3, 2015–2021 mark it 4)",
				r.Name, labelText(r.Labels), task.Convention, len(cases))
		}
	}
	m = &Manifest{Version: ManifestVersion, Source: dir, Options: opts, Fingerprint: fp, Task: &task, Cases: cases}
	if opts.Folds > 0 {
		if err := writeFolds(st.dir, m); err != nil {
			return nil, false, err
		}
	}
	if err := writeManifest(st.dir, m); err != nil {
		return nil, false, err
	}
	if err := st.commit(); err != nil {
		return nil, false, err
	}
	return m, false, nil
}

func modalityNames(c CaseSource) []string {
	var s []string
	for k := range c.Images {
		s = append(s, k)
	}
	sort.Strings(s)
	return s
}

func labelText(l []int) string {
	if l == nil {
		return "> 0"
	}
	return fmt.Sprint(l)
}

// prepareCase reads, checks, preprocesses and writes one case.
func prepareCase(c CaseSource, out string, opts Options, task Task) (CaseInfo, error) {
	info := CaseInfo{ID: c.ID, SourceLabel: c.Label, Challenge: c.Challenge,
		Image: filepath.Join("cases", c.ID+"_image.nii.gz"), Mask: filepath.Join("cases", c.ID+"_mask.nii.gz")}
	vols := make([]*volume.Volume, len(task.Channels))
	cache := map[string]*volume.Volume{}
	var first *volume.Volume
	var firstPath string
	for k, ch := range task.Channels {
		imgPath, frame := c.Images[ch], c.Frames[ch]
		if k == 0 {
			info.SourceImage, info.SourceFrame = imgPath, frame
		}
		if len(task.Channels) > 1 {
			info.SourceImages = append(info.SourceImages, imgPath)
			info.SourceFrames = append(info.SourceFrames, frame)
		}
		img, ok := cache[imgPath]
		if !ok {
			var err error
			if img, err = volume.Read(imgPath); err != nil {
				return info, err
			}
			cache[imgPath] = img
		}
		if img.Dims[3] > 1 && frame >= img.Dims[3] {
			return info, errs.Input(imgPath, "%s is volume %d but the file holds %d volumes", ch, frame, img.Dims[3])
		}
		if img.Dims[3] == 1 && frame > 0 {
			return info, errs.Input(imgPath, "%s is volume %d but the file is 3-D", ch, frame)
		}
		// Pick the frame here so a 4-D file of another kind than MSD uses
		// the frame its layout says.
		v3 := img
		if img.Dims[3] > 1 {
			data, _ := frameData(img, frame)
			cp := *img
			cp.Dims[3] = 1
			cp.Data = data
			v3 = &cp
		}
		if first == nil {
			first, firstPath = v3, imgPath
		} else if v3.Dims != first.Dims {
			return info, errs.Input(imgPath, "channel %s has shape %d×%d×%d but channel %s (%s) has %d×%d×%d",
				ch, v3.Dims[0], v3.Dims[1], v3.Dims[2], task.Channels[0], firstPath, first.Dims[0], first.Dims[1], first.Dims[2])
		}
		vols[k] = v3
	}
	lab, err := volume.Read(c.Label)
	if err != nil {
		return info, err
	}
	if lab.Dims[0] != first.Dims[0] || lab.Dims[1] != first.Dims[1] || lab.Dims[2] != first.Dims[2] {
		return info, errs.Input(c.Label, "label shape %d×%d×%d does not match image %s shape %d×%d×%d",
			lab.Dims[0], lab.Dims[1], lab.Dims[2], firstPath, first.Dims[0], first.Dims[1], first.Dims[2])
	}
	if lab.Dims[3] != 1 {
		return info, errs.Input(c.Label, "label has %d volumes, want a 3-D label map", lab.Dims[3])
	}
	x, g, err := PreprocessChannels(vols, task.Channels, opts.ForCase("case "+c.ID+" ("+firstPath+")"))
	if err != nil {
		return info, errs.WrapInput(firstPath, err, "case %s: cannot prepare image", c.ID)
	}
	mask, err := PrepareRegions(lab, task, g)
	if err != nil {
		return info, errs.WrapInput(c.Label, err, "cannot prepare label")
	}
	info.Geometry = g
	sh := g.PreparedDims()
	nc, nk := len(task.Channels), len(task.Regions)
	pv := &volume.Volume{Dims: [4]int{sh[0], sh[1], sh[2], nc}, Data: x, Spacing: g.PreparedSpacing, Affine: g.PreparedAffine}
	if err := volume.WriteNIfTI(filepath.Join(out, info.Image), pv, "float32"); err != nil {
		return info, err
	}
	mv := &volume.Volume{Dims: [4]int{sh[0], sh[1], sh[2], nk}, Data: make([]float32, len(mask)), Spacing: g.PreparedSpacing, Affine: g.PreparedAffine}
	if nk > 1 {
		info.RegionVoxels = make([]int, nk)
	}
	vox := sh[0] * sh[1] * sh[2]
	for i, b := range mask {
		mv.Data[i] = float32(b)
		info.Foreground += int(b)
		if nk > 1 {
			info.RegionVoxels[i/vox] += int(b)
		}
	}
	if err := volume.WriteNIfTI(filepath.Join(out, info.Mask), mv, "uint8"); err != nil {
		return info, err
	}
	return info, nil
}

// assignSplits shuffles case indices with a PCG generator seeded by seed
// and gives the first round(n·f_train) cases "train", the next
// round(n·f_val) "val" and the rest "test" (fractions normalised to sum 1).
func assignSplits(n int, seed int64, frac [3]float64) []string {
	sum := frac[0] + frac[1] + frac[2]
	nTrain := int(float64(n)*frac[0]/sum + 0.5)
	nVal := min(int(float64(n)*frac[1]/sum+0.5), n-nTrain)
	perm := rand.New(rand.NewPCG(uint64(seed), 0x5eed)).Perm(n)
	out := make([]string, n)
	for k, i := range perm {
		switch {
		case k < nTrain:
			out[i] = "train"
		case k < nTrain+nVal:
			out[i] = "val"
		default:
			out[i] = "test"
		}
	}
	return out
}

// fingerprint hashes the paths, sizes and modification times of the files
// preparation reads.
func fingerprint(sources []CaseSource, channels []string) (string, error) {
	h := sha256.New()
	for _, c := range sources {
		var files []string
		for _, ch := range channels {
			files = append(files, c.Images[ch])
		}
		for _, p := range append(files, c.Label) {
			st, err := os.Stat(p)
			if err != nil {
				return "", errs.WrapInput(p, err, "cannot read")
			}
			fmt.Fprintf(h, "%s\x00%d\x00%d\n", p, st.Size(), st.ModTime().UnixNano())
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// sameOptions says whether the case files prepared with options a can be
// reused for options b. The median spacing is a result of the data (which
// the fingerprint covers), not an option, so it is left out, and so is the
// fold count, which changes splits.json only.
func sameOptions(a, b Options) bool {
	a.Workers, b.Workers = 0, 0
	a.Progress, b.Progress = nil, nil
	a.Folds, b.Folds = 0, 0
	if a.SpacingMode == SpacingMedian && b.SpacingMode == SpacingMedian {
		a.Spacing, b.Spacing = [3]float64{}, [3]float64{}
	}
	return a == b
}

// medianSpacing returns the median native spacing per axis over the cases
// (the first channel's image of each; the mean of the two middle values
// for an even count), reading them with workers goroutines.
func medianSpacing(sources []CaseSource, task Task, workers int) ([3]float64, error) {
	sp := make([][3]float64, len(sources))
	errc := make([]error, len(sources))
	jobs := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < max(1, workers); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				path := sources[i].Images[task.Channels[0]]
				v, err := volume.Read(path)
				if err != nil {
					errc[i] = err
					continue
				}
				if err := checkSpacing(v.Spacing); err != nil {
					errc[i] = errs.Input(path, "case %s: native %v", sources[i].ID, err)
					continue
				}
				sp[i] = v.Spacing
			}
		}()
	}
	for i := range sources {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	for _, e := range errc {
		if e != nil {
			return [3]float64{}, e
		}
	}
	return MedianSpacing(sp), nil
}

// MedianSpacing returns the per-axis median of spacings (the mean of the
// two middle values for an even count; zeros for none), the target of
// --spacing median.
func MedianSpacing(spacings [][3]float64) [3]float64 {
	var out [3]float64
	n := len(spacings)
	if n == 0 {
		return out
	}
	v := make([]float64, n)
	for a := 0; a < 3; a++ {
		for i, s := range spacings {
			v[i] = s[a]
		}
		sort.Float64s(v)
		if n%2 == 1 {
			out[a] = v[n/2]
		} else {
			out[a] = (v[n/2-1] + v[n/2]) / 2
		}
	}
	return out
}

func filesExist(out string, m *Manifest) bool {
	for _, c := range m.Cases {
		if !isFile(filepath.Join(out, c.Image)) || !isFile(filepath.Join(out, c.Mask)) {
			return false
		}
	}
	return true
}

func readManifest(dir string) (*Manifest, error) {
	p := filepath.Join(dir, ManifestName)
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, errs.WrapInput(p, err, "invalid manifest")
	}
	if m.Version != ManifestVersion {
		return nil, errs.Input(p, "manifest version %d, this fess reads version %d (prepare again)", m.Version, ManifestVersion)
	}
	return &m, nil
}

func writeManifest(dir string, m *Manifest) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return atomicio.WriteFile(filepath.Join(dir, ManifestName), append(b, '\n'), 0o644)
}

// Prepared is an opened prepared data set.
type Prepared struct {
	Dir      string
	Manifest Manifest
	byID     map[string]int
}

// Open reads the manifest of the prepared data set in dir.
func Open(dir string) (*Prepared, error) {
	m, err := readManifest(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, errs.Input(dir, "no %s: not a prepared data set (run fess prepare)", ManifestName)
		}
		var ie *errs.InputError
		if errors.As(err, &ie) {
			return nil, err
		}
		return nil, errs.WrapInput(filepath.Join(dir, ManifestName), err, "cannot read manifest")
	}
	p := &Prepared{Dir: dir, Manifest: *m, byID: map[string]int{}}
	for i, c := range m.Cases {
		p.byID[c.ID] = i
	}
	return p, nil
}

// Size returns the edge S of the prepared cubes (0 in the spacing mode).
func (p *Prepared) Size() int { return p.Manifest.Options.Size }

// Patched says whether the data set was prepared in the spacing mode
// (--spacing): each case has its own dims, CaseGeometry.PreparedDims, and
// is read with LoadCase (training on patches); otherwise every case is an
// S³ cube.
func (p *Prepared) Patched() bool { return p.Manifest.Options.Patched() }

// Options returns the options the data set was prepared with, for
// PreprocessVolume on new inputs.
func (p *Prepared) Options() Options { return p.Manifest.Options }

// Split returns the cases of one split ("train", "val", "test"; "all" for
// every case), in manifest (ID) order.
func (p *Prepared) Split(name string) []CaseInfo {
	var out []CaseInfo
	for _, c := range p.Manifest.Cases {
		if name == "all" || c.Split == name {
			out = append(out, c)
		}
	}
	return out
}

// Case returns the case with the given ID.
func (p *Prepared) Case(id string) (CaseInfo, bool) {
	i, ok := p.byID[id]
	if !ok {
		return CaseInfo{}, false
	}
	return p.Manifest.Cases[i], true
}

// Task returns the data set's channels and regions. A manifest written
// before tasks existed is one channel (Options.Modality) and one region
// (Options.Target).
func (p *Prepared) Task() Task {
	if p.Manifest.Task != nil {
		return *p.Manifest.Task
	}
	t := LegacyTask(p.Manifest.Options)
	if len(p.Manifest.Cases) > 0 {
		t.Frames = []int{p.Manifest.Cases[0].SourceFrame}
	}
	return t
}

// Load reads a prepared case of the cube mode: the image, C channels of S³
// values one after the other (float32), and the mask, K regions of S³ 0/1
// values one after the other; x fastest within each. With one channel and
// one region this is the S³ image and mask. In the spacing mode (Patched)
// cases have their own dims and Load returns an input error: use LoadCase.
func (p *Prepared) Load(id string) (img []float32, mask []uint8, err error) {
	if p.Patched() {
		return nil, nil, errs.Input(p.Dir, "prepared in the spacing mode (--spacing): cases have their own dims, read them with LoadCase (train on patches)")
	}
	img, mask, _, err = p.LoadCase(id)
	return img, mask, err
}

// LoadCase reads a prepared case in either mode: the image, C channels of
// X·Y·Z values one after the other (float32), the mask, K regions of X·Y·Z
// 0/1 values one after the other, x fastest within each, and the dims
// X, Y, Z (S, S, S in the cube mode).
func (p *Prepared) LoadCase(id string) (img []float32, mask []uint8, dims [3]int, err error) {
	c, ok := p.Case(id)
	if !ok {
		return nil, nil, dims, errs.Input(p.Dir, "no case %q in the manifest", id)
	}
	dims = c.Geometry.PreparedDims()
	if !p.Patched() && p.Size() > 0 {
		dims = [3]int{p.Size(), p.Size(), p.Size()}
	}
	t := p.Task()
	iv, err := volume.Read(filepath.Join(p.Dir, c.Image))
	if err != nil {
		return nil, nil, dims, err
	}
	mv, err := volume.Read(filepath.Join(p.Dir, c.Mask))
	if err != nil {
		return nil, nil, dims, err
	}
	for _, v := range []struct {
		vol  *volume.Volume
		path string
		n    int
	}{{iv, c.Image, len(t.Channels)}, {mv, c.Mask, len(t.Regions)}} {
		if v.vol.Dims != [4]int{dims[0], dims[1], dims[2], v.n} {
			return nil, nil, dims, errs.Input(filepath.Join(p.Dir, v.path), "dims %v, manifest says %d×%d×%d×%d", v.vol.Dims, dims[0], dims[1], dims[2], v.n)
		}
	}
	mask = make([]uint8, len(mv.Data))
	for i, v := range mv.Data {
		if v > 0.5 {
			mask[i] = 1
		}
	}
	return iv.Data, mask, dims, nil
}
