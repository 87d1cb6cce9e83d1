package autodiff

// Toggles lets the A/B benchmarks (ab_bench_test.go, package
// autodiff_test) switch the engine's optional paths between steps.
var Toggles = map[string]*bool{
	"convcat": &useConvCat,
	"conv1":   &useConv1,
}
