package gptbench

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Kernels is what a compiled XLA program launches, read from the entry computation of its
// optimized HLO text (what XLA's compiler prints after its passes, e.g. for a GPU target): every
// instruction of the entry computation that is not a parameter, constant, tuple, tuple element or
// bitcast (those launch nothing). On a GPU each counted instruction is one kernel or library call
// (a fusion is one kernel; an FFT one cuFFT plan execution; a copy one copy), in program order.
type Kernels struct {
	// Count by class: Elementwise (fusions of elementwise work, transposes and concatenations, and
	// copies), Reduce (fusions that end in a reduction), Scatter (fusions that end in a scatter),
	// Product (matrix products: gemm fusions and library calls), FFT, Other (anything else).
	Elementwise, Reduce, Scatter, Product, FFT, Other int
	// Bytes is the sum over kernels of their operands' and results' sizes: what they would move
	// to and from memory if each operand were read once and each result written once.
	Bytes int64
	// Small is the number of kernels that move less than 1 MiB: their time is mostly launch and
	// latency, not bandwidth.
	Small int
	// List is every counted instruction, in program order.
	List []Kernel
}

// Kernel is one counted instruction of Kernels.
type Kernel struct {
	Name, Class string
	Bytes       int64
}

// Total is the number of kernels.
func (k Kernels) Total() int {
	return k.Elementwise + k.Reduce + k.Scatter + k.Product + k.FFT + k.Other
}

// smallKernelBytes is Kernels.Small's bound.
const smallKernelBytes = 1 << 20

var (
	// "%name = <shape> opcode(operands), attributes" (ROOT optional); a shape is an array type
	// with its layout ("f32[64,256]{1,0}") or a tuple of them in parentheses.
	hloInstruction = regexp.MustCompile(`^\s*(?:ROOT\s+)?%([\w.\-]+)\s*=\s*(\(.*?\)|\S+)\s+([a-z][\w\-]*)\((.*)$`)
	hloArray       = regexp.MustCompile(`\b(pred|s4|s8|s16|s32|s64|u4|u8|u16|u32|u64|f8e4m3fn|f8e5m2|bf16|f16|f32|f64|c64|c128)\[([0-9,]*)\]`)
	hloOperand     = regexp.MustCompile(`%([\w.\-]+)`)
	hloFusionKind  = regexp.MustCompile(`kind=(k\w+)`)
	hloCalls       = regexp.MustCompile(`calls=%([\w.\-]+)`)
	// The header of a computation: "%name (params) -> shape {" or "ENTRY %name ... {".
	hloComputation = regexp.MustCompile(`^(?:ENTRY\s+)?%([\w.\-]+)\s.*\{\s*$`)
)

var hloElementBytes = map[string]int64{"pred": 1, "s4": 1, "u4": 1, "s8": 1, "u8": 1, "f8e4m3fn": 1, "f8e5m2": 1,
	"s16": 2, "u16": 2, "bf16": 2, "f16": 2, "s32": 4, "u32": 4, "f32": 4, "s64": 8, "u64": 8, "f64": 8, "c64": 8, "c128": 16}

// launchesNothing are the entry instructions that are no kernel.
var launchesNothing = map[string]bool{"parameter": true, "constant": true, "tuple": true, "get-tuple-element": true,
	"bitcast": true, "after-all": true}

// hloShapeBytes is the size of an HLO shape (an array or a tuple of arrays).
func hloShapeBytes(shape string) int64 {
	var total int64
	for _, m := range hloArray.FindAllStringSubmatch(shape, -1) {
		n := hloElementBytes[m[1]]
		for _, d := range strings.Split(m[2], ",") {
			if d == "" {
				continue
			}
			v, err := strconv.ParseInt(d, 10, 64)
			if err != nil {
				return 0
			}
			n *= v
		}
		total += n
	}
	return total
}

// ReadKernels counts the kernels of an optimized HLO module's text (HloModule ... ENTRY ...).
func ReadKernels(text string) (Kernels, error) {
	var k Kernels
	roots, entry, err := hloComputations(text)
	if err != nil {
		return k, err
	}
	sizes := map[string]int64{}
	for _, line := range entry {
		m := hloInstruction.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		name, shape, op, rest := m[1], m[2], m[3], m[4]
		sizes[name] = hloShapeBytes(shape)
		if launchesNothing[op] {
			continue
		}
		operands, _, _ := strings.Cut(rest, ")")
		bytes := sizes[name]
		for _, o := range hloOperand.FindAllStringSubmatch(operands, -1) {
			bytes += sizes[o[1]]
		}
		class := kernelClass(op, line, roots)
		switch class {
		case "elementwise":
			k.Elementwise++
		case "reduce":
			k.Reduce++
		case "scatter":
			k.Scatter++
		case "product":
			k.Product++
		case "fft":
			k.FFT++
		default:
			k.Other++
		}
		k.Bytes += bytes
		if bytes < smallKernelBytes {
			k.Small++
		}
		k.List = append(k.List, Kernel{Name: name, Class: class, Bytes: bytes})
	}
	if k.Total() == 0 {
		return k, fmt.Errorf("the ENTRY computation launches no kernel")
	}
	return k, nil
}

// hloComputations splits an HLO module's text into its computations: for each, the opcodes its
// root computes (a tuple root's elements' opcodes, as a multi-output fusion's), and the entry
// computation's lines.
func hloComputations(text string) (roots map[string][]string, entry []string, err error) {
	roots = map[string][]string{}
	var name string
	var lines []string
	inEntry, sawEntry := false, false
	for _, line := range strings.Split(text, "\n") {
		if name == "" {
			if m := hloComputation.FindStringSubmatch(line); m != nil {
				name, lines, inEntry = m[1], nil, strings.HasPrefix(line, "ENTRY")
			}
			continue
		}
		if strings.TrimSpace(line) == "}" {
			roots[name] = rootOpcodes(lines)
			if inEntry {
				entry, sawEntry = lines, true
			}
			name = ""
			continue
		}
		lines = append(lines, line)
	}
	switch {
	case name != "":
		return nil, nil, fmt.Errorf("computation %s does not end", name)
	case !sawEntry:
		return nil, nil, fmt.Errorf("no ENTRY computation in the HLO text")
	}
	return roots, entry, nil
}

// rootOpcodes returns the opcode of a computation's ROOT instruction, or for a tuple those of its
// elements.
func rootOpcodes(lines []string) []string {
	opcodes := map[string]string{}
	for _, line := range lines {
		m := hloInstruction.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		opcodes[m[1]] = m[3]
		if !strings.HasPrefix(strings.TrimSpace(line), "ROOT") {
			continue
		}
		if m[3] != "tuple" {
			return []string{m[3]}
		}
		operands, _, _ := strings.Cut(m[4], ")")
		var out []string
		for _, o := range hloOperand.FindAllStringSubmatch(operands, -1) {
			out = append(out, opcodes[o[1]])
		}
		return out
	}
	return nil
}

// kernelClass classifies an entry instruction: a fusion by what its computation ends in (a
// reduction, a scatter, a product: gemm fusions, Triton's or cuBLAS's with their epilogues) or, for
// the rest of its kinds, as elementwise (kLoop; kInput's transposes and concatenations); library
// calls to cuBLAS as products; FFTs; copies as elementwise; anything else as other.
func kernelClass(op, line string, roots map[string][]string) string {
	switch op {
	case "fft":
		return "fft"
	case "copy", "transpose":
		return "elementwise"
	case "dot", "convolution":
		return "product"
	case "custom-call":
		if strings.Contains(line, "gemm") || strings.Contains(line, "cublas") {
			return "product"
		}
		return "other"
	case "fusion":
		kind := ""
		if m := hloFusionKind.FindStringSubmatch(line); m != nil {
			kind = m[1]
		}
		if (kind == "kCustom" || kind == "kOutput") && (strings.Contains(line, "gemm") || strings.Contains(line, "cublas")) {
			return "product"
		}
		var root []string
		if m := hloCalls.FindStringSubmatch(line); m != nil {
			root = roots[m[1]]
		}
		switch {
		case slices.Contains(root, "scatter"):
			return "scatter"
		case slices.Contains(root, "reduce"):
			return "reduce"
		case slices.Contains(root, "dot"):
			return "product"
		case kind == "kLoop" || kind == "kInput":
			return "elementwise"
		}
	}
	return "other"
}
