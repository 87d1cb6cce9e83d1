package experiment

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fess-seg/fess/errs"
)

// An invalid experiment file is refused naming the field and the value,
// before anything (experiment.json included) is written.
func TestValidateRefusesBeforeWriting(t *testing.T) {
	base := func() File {
		return File{Out: filepath.Join(t.TempDir(), "out"), Losses: []string{"dice"},
			Datasets: []Dataset{{Name: "b", Kind: "brain", Cases: 3, SynthSize: 16, Size: 16}}}
	}
	for _, tc := range []struct {
		set  func(*File)
		want string
	}{
		{func(f *File) { f.Split = [3]float64{math.NaN(), 0.1, 0.2} }, "split [NaN 0.1 0.2]"},
		{func(f *File) { f.Split = [3]float64{-1, 0.1, 0.2} }, "split [-1 0.1 0.2]"},
		{func(f *File) { f.Train.Dropout = -0.5 }, "train.dropout -0.5"},
		{func(f *File) { f.Train.LR = math.NaN() }, "--lr NaN"},
		{func(f *File) { f.Train.Lambda = 2 }, "--lambda 2"},
		{func(f *File) { f.Train.Temperature = -1 }, "--temperature -1"},
		{func(f *File) { f.Train.ClipNorm = math.Inf(1) }, "--clip-norm +Inf"},
	} {
		f := base()
		tc.set(&f)
		f = f.Defaults()
		if err := f.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Validate gave %v", tc.want, err)
		}
		_, err := Run(&f, Options{})
		if err == nil || errs.ExitCode(err) != 2 || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Run gave %v (exit %d)", tc.want, err, errs.ExitCode(err))
		}
		if _, err := os.Stat(filepath.Join(f.Out, "experiment.json")); err == nil {
			t.Errorf("%s: a refused experiment wrote experiment.json", tc.want)
		}
	}
}
