package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/fess-seg/fess/dataset"
	"github.com/fess-seg/fess/errs"
	"github.com/fess-seg/fess/model"
	"github.com/fess-seg/fess/onnx"
	"github.com/fess-seg/fess/safetensors"
	"github.com/fess-seg/fess/train"
)

const exportUsage = `usage: fess export --run RUN --format safetensors|onnx --out FILE [--checkpoint best|last|ema]

Writes a trained run's network (its best checkpoint, else its last) for
use outside fess, in MONAI's axis order: batches N×C×X×Y×Z with X, Y, Z the
voxel axes of the NIfTI array as nibabel returns it (fess computes N×Z×Y×X×C
internally).

  safetensors  the inference weights as the state_dict of the PyTorch module
               in model/torch/fess_unet.py (names such as enc.0.0.conv.weight,
               bott.1.bn.running_var, dec.2.up.weight, final.bias; BatchNorm
               running statistics included, num_batches_tracked 0). In Python:
                 import fess_unet; m = fess_unet.load_fess("model.safetensors")
                 logits = m(x)   # x: N×C×X×Y×Z; sigmoid or softmax(dim=1)
  onnx         the inference graph (opset 17), input "input" N×C×X×Y×Z,
               outputs "output" (probabilities) and "logits".

Both carry metadata: "config" (the model config as JSON), "fess_version",
"format" ("pt" for safetensors), "inputs", "outputs", "channels" (input
channel names in order), "regions" (output region or class names),
"output_channels" (one name per output channel, "background" first for
softmax classes), "activation" (sigmoid or softmax), "layout" (NCXYZ).

examples:
  fess export --run runs/brats --format safetensors --out brats.safetensors
  fess export --run runs/brats --format onnx --out brats.onnx`

func init() {
	register("export", "write a trained network as safetensors (PyTorch) or ONNX",
		func(args []string) error { return runExport(args, os.Stderr) })
}

func runExport(args []string, stderr io.Writer) error {
	fs := newFlags("export", exportUsage)
	run := fs.String("run", "", "run folder")
	format := fs.String("format", "", "safetensors or onnx")
	out := fs.String("out", "", "output file")
	which := fs.String("checkpoint", "best", "weights to export: best, last or ema (a run trained with --ema)")
	if err := parseFlags(fs, exportUsage, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return errs.Usage("export: unexpected argument %q\n%s", fs.Arg(0), exportUsage)
	}
	if *run == "" || *out == "" || *format == "" {
		return errs.Usage("export: --run, --format and --out are required\n%s", exportUsage)
	}
	if *format != "safetensors" && *format != "onnx" {
		return errs.Usage("export: unknown --format %q (want safetensors or onnx)\n%s", *format, exportUsage)
	}
	m, _, err := train.LoadModelCheckpoint(*run, *which)
	if err != nil {
		return err
	}
	task, err := train.LoadTask(*run)
	if err != nil {
		return err
	}
	meta, err := exportMetadata(m, task, *format)
	if err != nil {
		return err
	}
	switch *format {
	case "safetensors":
		err = m.WriteTorchFile(*out, meta)
	case "onnx":
		err = onnx.Write(*out, m, meta)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "wrote %s (%s, %s)\n", *out, *format, strings.Join(task.RegionNames(), ","))
	return nil
}

// exportMetadata describes the exported network (see exportUsage).
func exportMetadata(m *model.UNet3D, task dataset.Task, format string) (map[string]string, error) {
	cfg, err := json.Marshal(m.Cfg)
	if err != nil {
		return nil, err
	}
	outs := task.RegionNames()
	act := "sigmoid"
	if m.Cfg.Softmax {
		act = "softmax"
		outs = append([]string{"background"}, outs...)
	}
	meta := map[string]string{
		model.TorchConfigKey: string(cfg),
		"fess_version":       safetensors.FessVersion,
		"inputs":             "input",
		"channels":           strings.Join(task.Channels, ","),
		"regions":            strings.Join(task.RegionNames(), ","),
		"output_channels":    strings.Join(outs, ","),
		"activation":         act,
		"layout":             "NCXYZ",
	}
	if task.Convention != "" {
		meta["convention"] = task.Convention
	}
	if format == "safetensors" {
		meta["format"] = "pt"
		meta["outputs"] = "logits"
	} else {
		meta["outputs"] = "output,logits"
	}
	return meta, nil
}
