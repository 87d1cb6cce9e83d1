package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/fess-seg/fess/errs"
	"github.com/fess-seg/fess/model"
	"github.com/fess-seg/fess/train"
)

const importUsage = `usage: fess import --safetensors FILE --data PREPARED --out RUN
                   [--preset seed|unet3d] [--filters F] [--levels L] [--dropout P]

Turns weights trained in PyTorch into a fess run folder that fess test,
fess predict and fess export use as they are, and that fess train --resume
fine-tunes. FILE is the state_dict of the module in model/torch/fess_unet.py
saved as safetensors (the names and N×C×X×Y×Z layout fess export writes;
see that file), BatchNorm running statistics included. Its "config"
metadata gives the architecture; without it, give the model flags (the
defaults are fess train's). --data names the prepared data set the network
is for: it fixes the input size, channels, regions and preprocessing
recorded in the run (config.json, data_options.json, task.json). The run's
last.safetensors and best.safetensors hold the imported weights at epoch 0.

A tensor that is missing, unexpected, of another shape or not finite is
refused (exit 2), naming the tensor and both shapes. To train on from
PyTorch weights directly, use fess train --init FILE.

example:
  fess import --safetensors unet.safetensors --data data/brats-prep --out runs/from-torch`

func init() {
	register("import", "make a run folder from PyTorch weights (safetensors)",
		func(args []string) error { return runImport(args, os.Stderr) })
}

func runImport(args []string, stderr io.Writer) error {
	fs := newFlags("import", importUsage)
	file := fs.String("safetensors", "", "state_dict saved as safetensors")
	data := fs.String("data", "", "prepared data folder the network is for")
	out := fs.String("out", "", "run folder to create")
	preset := fs.String("preset", "unet3d", "network preset: unet3d or seed")
	filters := fs.Int("filters", 0, "F, channels of the first level (0: preset default)")
	levels := fs.Int("levels", 0, "pooled levels (0: preset default)")
	dropout := fs.Float64("dropout", 0, "dropout probability (0: preset default)")
	if err := parseFlags(fs, importUsage, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return errs.Usage("import: unexpected argument %q\n%s", fs.Arg(0), importUsage)
	}
	if *file == "" || *data == "" || *out == "" {
		return errs.Usage("import: --safetensors, --data and --out are required\n%s", importUsage)
	}
	cfg := train.Config{Data: *data, InitFrom: *file,
		Model: model.Config{Preset: *preset, Filters: *filters, Levels: *levels, Dropout: float32(*dropout)}}
	if err := applyInitConfig(&cfg, *file, explicitFlags(fs)); err != nil {
		return err
	}
	t, err := train.New(cfg, *out, train.Options{})
	if err != nil {
		return err
	}
	if err := t.SaveInitial(); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "imported %s into %s\n", *file, *out)
	return nil
}

// applyInitConfig takes the architecture of an --init/--safetensors file's
// "config" metadata into cfg.Model, except the fields whose flags (preset,
// filters, levels, dropout) were given explicitly. The data set decides the
// input size, and the run's seed the model seed. Files without the metadata
// leave cfg unchanged.
func applyInitConfig(cfg *train.Config, file string, explicit map[string]bool) error {
	_, meta, err := model.ReadTorchFile(file)
	if err != nil {
		return err
	}
	fc, ok, err := model.TorchFileConfig(file, meta)
	if err != nil || !ok {
		return err
	}
	mc := &cfg.Model
	if !explicit["preset"] {
		mc.Preset = fc.Preset
	}
	if !explicit["filters"] {
		mc.Filters = fc.Filters
	}
	if !explicit["levels"] {
		mc.Levels = fc.Levels
	}
	if !explicit["dropout"] {
		mc.Dropout = fc.Dropout
	}
	mc.BottleneckChannels = fc.BottleneckChannels
	mc.NoUpBN = fc.NoUpBN
	mc.InChannels, mc.OutChannels, mc.Softmax = fc.InChannels, fc.OutChannels, fc.Softmax
	return nil
}

// explicitFlags returns the names of the flags given on the command line.
func explicitFlags(fs *flag.FlagSet) map[string]bool {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	return set
}
