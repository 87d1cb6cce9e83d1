package dataset

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"github.com/fess-seg/fess/errs"
	"github.com/fess-seg/fess/volume"
)

func TestOptionsValidateNamesValue(t *testing.T) {
	nan := math.NaN()
	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{Size: -8}, "--size -8"},
		{Options{Size: 2}, "--size 2"},
		{Options{Split: [3]float64{nan, 0.1, 0.2}}, "--split NaN,0.1,0.2"},
		{Options{Split: [3]float64{-0.1, 0.5, 0.5}}, "--split -0.1,0.5,0.5"},
		{Options{Split: [3]float64{math.Inf(1), 0.5, 0.5}}, "--split +Inf"},
		{Options{Window: [2]float64{nan, 300}}, "--window NaN,300"},
		{Options{Window: [2]float64{300, -200}}, "--window 300,-200"},
		{Options{Window: [2]float64{math.Inf(-1), 300}}, "--window -Inf,300"},
	} {
		tc.o.Layout = LayoutBraTS2017
		err := tc.o.Defaults().Validate()
		if err == nil || errs.ExitCode(err) != 2 || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v", tc.want, err)
		}
	}
	if err := (Options{Layout: LayoutBraTS2017}).Defaults().Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
}

func TestPreprocess2DAndConstant(t *testing.T) {
	flat := &volume.Volume{Dims: [4]int{8, 8, 1, 1}, Data: make([]float32, 64), Spacing: [3]float64{1, 1, 1}}
	for i := range flat.Data {
		flat.Data[i] = float32(i)
	}
	_, _, err := PreprocessChannels([]*volume.Volume{flat}, []string{"flair"}, Options{Size: 8})
	if err == nil || !strings.Contains(err.Error(), "2-D image; fess segments 3-D volumes") {
		t.Errorf("2-D image: %v", err)
	}
	var buf bytes.Buffer
	saved := Warnings
	Warnings = &buf
	defer func() { Warnings = saved }()
	c := &volume.Volume{Dims: [4]int{8, 8, 8, 1}, Data: make([]float32, 512), Spacing: [3]float64{1, 1, 1}}
	for i := range c.Data {
		c.Data[i] = 7
	}
	if _, _, err := PreprocessChannels([]*volume.Volume{c}, []string{"flair"}, Options{Size: 8}.ForCase("case X1")); err != nil {
		t.Fatal(err)
	}
	if w := buf.String(); !strings.Contains(w, "warning: case X1: channel flair is a constant image (every voxel is 7)") {
		t.Errorf("constant image warning: %q", w)
	}
	buf.Reset()
	c.Data[3] = 1
	if _, _, err := PreprocessChannels([]*volume.Volume{c}, []string{"flair"}, Options{Size: 8}); err != nil || buf.Len() != 0 {
		t.Errorf("non-constant image: %v, warning %q", err, buf.String())
	}
}
