"""C project generation: network.h/.c (one entry point that wires buffers and
calls kernels), weights.c (const arrays, placed in flash on an MCU), main.c
(a host runner reading inputs from a binary file) and a Makefile."""
from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UnsupportedOpError, node_label
from ..ir import C_TYPES, Graph, TensorType
from ..ops.registry import Value, get_op
from ..planner import MemoryPlan
from .context import LowerCtx, TableSink, float_literal

RUNTIME_DIR = Path(__file__).resolve().parent.parent / "runtime"


@dataclass
class CSources:
    network_h: str
    network_c: str
    weights_c: str
    main_c: str
    makefile: str
    const_names: dict[str, str]


def c_ident(name: str, prefix: str) -> str:
    s = re.sub(r"[^0-9A-Za-z_]", "_", name)
    return f"{prefix}{s}"


class Symbols:
    """Module-level C names shared by the functions of one generated file."""

    def __init__(self, graphs: list[Graph], prefix: str):
        self.prefix = prefix
        constants: dict[str, np.ndarray] = {}
        for g in graphs:
            constants.update(g.constants)
        self.const_names = _const_names(constants)
        self.state_names = _unique_names([k for g in graphs for k in g.state], f"{prefix}_state_")
        self.tables = TableSink(f"{prefix}_tab")
        self.arena = f"{prefix}_arena.bytes"


def function_body(graph: Graph, plan: MemoryPlan, syms: Symbols, cores: int = 1,
                  parallel: str = "threads", fma: bool = False) -> list[str]:
    """C statements running `graph` once: inputs[]/outputs[] are the caller's
    buffers, activations live in the shared arena at the planned offsets.

    With cores > 1 the statements use an `mt_par_t par`. parallel="threads":
    the body of one core's function (every core runs every layer, each doing
    its share, then a barrier; ops without a parallel kernel run on core 0).
    parallel="sequential" (emulators run one core): each layer runs core
    0..N-1's shares in turn, with an MT_CORE_END(i) marker after each.
    `fma`: ops may lower to fused multiply-add kernels (LowerCtx.fma)."""
    body: list[str] = []
    threads = cores > 1 and parallel == "threads"
    sequential = cores > 1 and not threads

    def ptr(tensor: str) -> str:
        s = plan.storage[tensor]
        if s.kind == "arena":
            return f"({syms.arena} + {plan.buffers[s.index].offset})"
        if s.kind == "input":
            return f"inputs[{s.index}]"
        if s.kind == "output":
            return f"outputs[{s.index}]"
        if s.kind == "state":
            return syms.state_names[s.name]
        return syms.const_names[s.name]

    for step, node in enumerate(graph.nodes):
        op = get_op(node)
        ins = [Value(None) if not i else Value(graph.type_of(i), graph.constants.get(i)) for i in node.inputs]
        outs = [graph.types[o] for o in node.outputs if o]
        body.append(f"  /* {step}: {node.name} ({node.op}) -> "
                    f"{', '.join(str(t) for t in outs) or 'updates state'} */")
        body.append(f"  MT_LAYER_BEGIN({step});")
        code: list[str] = []
        if op.view and node.outputs[0] not in plan.copies:
            body.append("  /* view: shares its input's memory, no code */")
        elif op.view:
            code = [f"memcpy({ptr(node.outputs[0])}, {ptr(node.inputs[0])}, {outs[0].nbytes});"]
        else:
            if op.lower is None:
                raise UnsupportedOpError(
                    f"{node_label(node)}: this op is only supported when all its inputs are constants "
                    "(it is folded at compile time); here it depends on a run-time input")
            sc = plan.scratch.get(node.name)
            ctx = LowerCtx(node, ins, outs,
                           [ptr(i) if i else None for i in node.inputs],
                           [ptr(o) for o in node.outputs if o],
                           f"({syms.arena} + {plan.buffers[sc].offset})" if sc is not None else None,
                           syms.tables, cores, plan.buffers[sc].size if sc is not None else 0, fma=fma)
            code = op.lower(node, ctx).strip().splitlines()
            if cores > 1 and not ctx.used_par:   # no parallel kernel: core 0 does it all
                code = ["if (par.core_id == 0) {", *("  " + c for c in code), "}"]
        dumps = [f"MT_LAYER_OUTPUT({step}, {ptr(o)}, {graph.types[o].nbytes});" for o in node.outputs if o]
        if sequential:
            body.append(f"  for (par.core_id = 0; par.core_id < {cores}; par.core_id++) {{")
            body.extend("    " + line for line in code)
            body.append(f"    MT_CORE_END({step});")
            body.append("  }")
            body.extend("  " + d for d in dumps)
        elif threads:
            body.extend("  " + line for line in code)
            if code:
                body.append("  mt_par_barrier();")
            body.append("  if (par.core_id == 0) {")
            body.extend("    " + d for d in dumps)
            body.append("  }")
            body.append("  MT_PAR_DUMP_BARRIER();")
        else:
            body.extend("  " + line for line in code)
            body.extend("  " + d for d in dumps)
        if not sequential:
            body.append(f"  MT_LAYER_END({step});")

    # Graph outputs that no node writes: constants, inputs, state, or repeated outputs.
    written = {o for n in graph.nodes for o in n.outputs}
    tail: list[str] = []
    for j, o in enumerate(graph.outputs):
        if o in written and graph.outputs.index(o) == j:
            continue
        if o in graph.outputs[:j]:
            src = f"outputs[{graph.outputs.index(o)}]"
        elif o in graph.inputs:
            src = f"inputs[{graph.inputs.index(o)}]"
        elif o in graph.state:
            src = syms.state_names[o]
        else:
            src = syms.const_names[o]
        tail.append(f"  memcpy(outputs[{j}], {src}, {graph.type_of(o).nbytes});")
    if threads and tail:
        tail = ["  if (par.core_id == 0) {", *("  " + t for t in tail), "  }"]
    return body + tail


def referenced_constants(const_names: dict[str, str], code: list[str]) -> dict[str, str]:
    """The constants the generated code uses. A kernel that re-lays out its
    weights at compile time (the int8 GEMM kernels) reads its own table in
    network.c, not the original tensor; leaving that out of weights.c keeps
    the weights in flash once, whatever the user's linker does."""
    used = set(re.findall(r"\b\w+\b", "\n".join(code)))
    return {c: n for c, n in const_names.items() if n in used}


def generate(graph: Graph, plan: MemoryPlan, prefix: str = "mt_network", cores: int = 1,
             parallel: str = "threads") -> CSources:
    """cores > 1: parallel="threads" runs the cores on pthreads (host);
    "sequential" runs their shares one after the other (emulated targets,
    for per-core instruction counts). See function_body."""
    syms = Symbols([graph], prefix)
    body = function_body(graph, plan, syms, cores, parallel)
    tables = syms.tables
    const_names = referenced_constants(syms.const_names, [*body, tables.c_source()])
    return CSources(
        network_h=_header(graph, plan, prefix),
        network_c=_network_c(graph, plan, prefix, tables, body, const_names, cores, parallel),
        weights_c=weights_c(graph.constants, const_names),
        main_c=_main_c(prefix),
        makefile=MAKEFILE,
        const_names=const_names,
    )


def _const_names(constants: dict) -> dict[str, str]:
    return _unique_names(list(constants), "mt_w_")


def _unique_names(tensors: list[str], prefix: str, limit: int = 60) -> dict[str, str]:
    """Readable C identifiers, truncated to `limit` characters, unique."""
    names, used = {}, set()
    for i, t in enumerate(dict.fromkeys(tensors)):
        base = c_ident(t, prefix)[:limit]
        name = base if base not in used else f"{base}_{i}"
        used.add(name)
        names[t] = name
    return names


def _io_type(graph: Graph, name: str) -> TensorType:
    if name in graph.types:
        return graph.types[name]
    c = graph.constants[name]
    return TensorType(c.shape, c.dtype)


def _header(graph: Graph, plan: MemoryPlan, prefix: str) -> str:
    P = prefix.upper()
    lines = [
        f"/* Generated by microtrain from {Path(graph.source).name}. Do not edit. */",
        f"#ifndef {P}_H", f"#define {P}_H", "#include <stddef.h>", "#include <stdint.h>", "",
        f"#define {P}_NUM_INPUTS {len(graph.inputs)}",
        f"#define {P}_NUM_OUTPUTS {len(graph.outputs)}",
        f"#define {P}_ARENA_BYTES {plan.arena_bytes}",
        "",
        "/* Inputs, in this order (row-major, C types as given):",
    ]
    for i, n in enumerate(graph.inputs):
        t = graph.types[n]
        lines.append(f" *   inputs[{i}]  '{n}': {t.ctype}{list(t.shape)} ({t.nbytes} bytes)")
    lines.append(" * Outputs:")
    for j, n in enumerate(graph.outputs):
        t = _io_type(graph, n)
        lines.append(f" *   outputs[{j}] '{n}': {t.ctype}{list(t.shape)} ({t.nbytes} bytes)")
    lines += [
        " */",
        f"extern const size_t {prefix}_input_bytes[{max(len(graph.inputs), 1)}];",
        f"extern const size_t {prefix}_output_bytes[{max(len(graph.outputs), 1)}];",
        "",
        "/* Runs the network once. Buffers are the caller's; all intermediate data",
        f" * lives in a static arena of {P}_ARENA_BYTES bytes. Not reentrant. */",
        f"void {prefix}_run(const void *const inputs[], void *const outputs[]);",
        "", "#endif", "",
    ]
    return "\n".join(lines)


def _network_c(graph, plan, prefix, tables, body, const_names, cores=1, parallel="threads") -> str:
    externs = [f"extern const {C_TYPES[graph.constants[c].dtype]} {n}[];" for c, n in const_names.items()]
    in_bytes = ", ".join(str(graph.types[n].nbytes) for n in graph.inputs) or "0"
    out_bytes = ", ".join(str(_io_type(graph, n).nbytes) for n in graph.outputs) or "0"
    threads = cores > 1 and parallel == "threads"
    run = f"void {prefix}_run(const void *const inputs[], void *const outputs[])"
    if cores == 1:
        functions = [run, "{", "  (void)inputs; (void)outputs;", *body, "}"]
    elif threads:
        functions = _thread_functions(prefix, cores, body, run)
    else:
        functions = [run, "{", "  mt_par_t par;", "  (void)inputs; (void)outputs;",
                     f"  par.n_cores = {cores};", *body, "}"]
    return "\n".join([
        f"/* Generated by microtrain from {Path(graph.source).name}. Do not edit. */",
        *(["#define _POSIX_C_SOURCE 200809L  /* pthread barriers under -std=c99 */"] if threads else []),
        "#include <math.h>", "#include <string.h>", '#include "mt_kernels.h"', '#include "network.h"', "",
        "#ifndef MT_LAYER_BEGIN", "#define MT_LAYER_BEGIN(i) ((void)0)", "#endif",
        "#ifndef MT_LAYER_END", "#define MT_LAYER_END(i) ((void)0)", "#endif",
        "#ifndef MT_CORE_END", "#define MT_CORE_END(i) ((void)0)", "#endif",
        "/* Debug hook: called with each layer's output (host debug builds dump them). */",
        "#ifndef MT_LAYER_OUTPUT", "#define MT_LAYER_OUTPUT(i, p, n) ((void)0)", "#endif",
        "#ifdef MT_DEBUG_DUMP_DECL", "void mt_debug_dump(int layer, const void *p, size_t n);", "#endif", "",
        *externs, "",
        f"const size_t {prefix}_input_bytes[] = {{{in_bytes}}};",
        f"const size_t {prefix}_output_bytes[] = {{{out_bytes}}};", "",
        "/* One arena for all activations and scratch; offsets from the memory planner. */",
        f"static union {{ uint8_t bytes[{max(plan.arena_bytes, 1)}]; double align; }} {prefix}_arena;", "",
        tables.c_source(), "",
        *functions, "",
    ])


def _thread_functions(prefix: str, cores: int, body: list[str], run: str) -> list[str]:
    """Host multi-core: the run function starts cores-1 pthreads, runs core 0
    itself and joins them; every core runs `{prefix}_core` (all layers, a
    barrier after each)."""
    return [
        "#include <pthread.h>", "#include <stdlib.h>", "",
        f"static pthread_barrier_t {prefix}_barrier;",
        f"#define mt_par_barrier() pthread_barrier_wait(&{prefix}_barrier)",
        "/* Debug dumps read a layer's output after the barrier: no core may overwrite it meanwhile. */",
        "#ifdef MT_DEBUG_DUMP_DECL", "#define MT_PAR_DUMP_BARRIER() mt_par_barrier()",
        "#else", "#define MT_PAR_DUMP_BARRIER() ((void)0)", "#endif", "",
        f"static void {prefix}_core(const void *const inputs[], void *const outputs[], mt_par_t par)", "{",
        "  (void)inputs; (void)outputs;", *body, "}", "",
        "typedef struct { const void *const *inputs; void *const *outputs; mt_par_t par; } "
        f"{prefix}_job;", "",
        f"static void *{prefix}_thread(void *arg)", "{",
        f"  const {prefix}_job *job = ({prefix}_job *)arg;",
        f"  {prefix}_core(job->inputs, job->outputs, job->par);",
        "  return NULL;", "}", "",
        f"/* {cores} cores: core 0 is the calling thread. */",
        run, "{",
        f"  pthread_t threads[{cores}];",
        f"  {prefix}_job jobs[{cores}];",
        "  int32_t c;",
        f"  if (pthread_barrier_init(&{prefix}_barrier, NULL, {cores}) != 0) abort();",
        f"  for (c = 0; c < {cores}; c++) {{",
        "    jobs[c].inputs = inputs; jobs[c].outputs = outputs;",
        f"    jobs[c].par.core_id = c; jobs[c].par.n_cores = {cores};",
        f"    if (c > 0 && pthread_create(&threads[c], NULL, {prefix}_thread, &jobs[c]) != 0) abort();",
        "  }",
        f"  {prefix}_thread(&jobs[0]);",
        f"  for (c = 1; c < {cores}; c++) pthread_join(threads[c], NULL);",
        f"  pthread_barrier_destroy(&{prefix}_barrier);",
        "}",
    ]


def weights_c(constants: dict, const_names: dict[str, str], state: dict | None = None,
              state_names: dict[str, str] | None = None) -> str:
    """Constant tensors as `const` arrays (flash on an MCU); state tensors
    (trainable weights, optimizer state) as initialized RAM arrays."""
    out = ["/* Generated by microtrain: constant tensors (const: placed in flash on MCUs)",
           " * and state tensors (RAM, updated by training). */",
           "#include <math.h>", "#include <stdint.h>", "",
           "#ifndef MT_STATE_ALIGN", "#define MT_STATE_ALIGN __attribute__((aligned(8)))", "#endif", ""]
    items_all = [(c, name, constants[c], "const ") for c, name in const_names.items()]
    items_all += [(c, name, state[c], "") for c, name in (state_names or {}).items()]
    for c, name, arr, qual in items_all:
        ctype = C_TYPES[arr.dtype]
        flat = arr.reshape(-1)
        if arr.dtype == np.float32:
            items = [float_literal(v) for v in flat.tolist()]
        elif arr.dtype == np.bool_:
            items = [str(int(v)) for v in flat.tolist()]
        elif arr.dtype == np.int64:
            items = [f"INT64_C({int(v)})" for v in flat.tolist()]
        else:
            items = [str(int(v)) for v in flat.tolist()]
        if not items:
            items = ["0"]
        rows = [", ".join(items[k:k + 12]) for k in range(0, len(items), 12)]
        out.append(f"/* {c}: {TensorType(arr.shape, arr.dtype)} */")
        align = "" if qual else " MT_STATE_ALIGN"
        out.append(f"{qual}{ctype} {name}[{max(flat.size, 1)}]{align} = {{\n  " + ",\n  ".join(rows) + "\n};")
    return "\n".join(out) + "\n"


def _main_c(prefix: str) -> str:
    P = prefix.upper()
    return f"""/* Generated by microtrain: host runner. Usage: ./network inputs.bin outputs.bin
 * inputs.bin holds the inputs back to back (raw, row-major); outputs.bin gets the outputs. */
#include <stdio.h>
#include <stdlib.h>
#include "network.h"

/* Per-layer dump for debug builds (-DMT_LAYER_OUTPUT(i,p,n)=mt_debug_dump(i,p,n)):
 * appends (layer index, byte count, bytes) records to $MT_DUMP_FILE. */
void mt_debug_dump(int layer, const void *p, size_t n);
void mt_debug_dump(int layer, const void *p, size_t n)
{{
  static FILE *dump;
  const char *path = getenv("MT_DUMP_FILE");
  int32_t hdr[2];
  if (!path) return;
  if (!dump) dump = fopen(path, "wb");
  if (!dump) return;
  hdr[0] = layer; hdr[1] = (int32_t)n;
  fwrite(hdr, sizeof hdr, 1, dump);
  fwrite(p, 1, n, dump);
  fflush(dump);
}}

int main(int argc, char **argv)
{{
  static const void *inputs[{P}_NUM_INPUTS + 1];
  static void *outputs[{P}_NUM_OUTPUTS + 1];
  FILE *f;
  int i;
  if (argc != 3) {{ fprintf(stderr, "usage: %s inputs.bin outputs.bin\\n", argv[0]); return 2; }}
  f = fopen(argv[1], "rb");
  if (!f) {{ fprintf(stderr, "cannot open %s\\n", argv[1]); return 2; }}
  for (i = 0; i < {P}_NUM_INPUTS; i++) {{
    void *buf = malloc({prefix}_input_bytes[i] + 1);  /* host runner only; the network itself never allocates */
    if (!buf || fread(buf, 1, {prefix}_input_bytes[i], f) != {prefix}_input_bytes[i]) {{
      fprintf(stderr, "input %d: short read\\n", i); return 2; }}
    inputs[i] = buf;
  }}
  fclose(f);
  for (i = 0; i < {P}_NUM_OUTPUTS; i++) outputs[i] = malloc({prefix}_output_bytes[i] + 1);
  {prefix}_run(inputs, outputs);
  f = fopen(argv[2], "wb");
  if (!f) {{ fprintf(stderr, "cannot open %s\\n", argv[2]); return 2; }}
  for (i = 0; i < {P}_NUM_OUTPUTS; i++) fwrite(outputs[i], 1, {prefix}_output_bytes[i], f);
  fclose(f);
  return 0;
}}
"""


def makefile(program: str, sources: list[str], header: str, usage: str) -> str:
    """A plain Makefile that builds the host runner `program` from `sources` + the kernel library."""
    return f"""# Generated by microtrain. {usage}
CC ?= gcc
CFLAGS ?= -O2 -std=c99 -Wall -ffp-contract=off
SRCS = {' '.join(sources)} $(wildcard runtime/*.c)

{program}: $(SRCS) {header} runtime/mt_kernels.h
\t$(CC) $(CFLAGS) -Iruntime -I. -o $@ $(SRCS) -lm -pthread

clean:
\trm -f {program}
.PHONY: clean
"""


MAKEFILE = makefile("network", ["network.c", "weights.c", "main.c"], "network.h",
                    "Builds the host runner: `make`, then ./network in.bin out.bin")


def write_files(files: dict[str, str], out_dir: Path) -> Path:
    """Write generated files and a copy of the kernel library (runtime/)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (out_dir / name).write_text(text)
    rt = out_dir / "runtime"
    rt.mkdir(exist_ok=True)
    for f in RUNTIME_DIR.iterdir():
        if f.suffix in (".c", ".h"):
            shutil.copyfile(f, rt / f.name)
    return out_dir


def write_project(src: CSources, out_dir: Path) -> Path:
    return write_files({"network.h": src.network_h, "network.c": src.network_c, "weights.c": src.weights_c,
                        "main.c": src.main_c, "Makefile": src.makefile}, out_dir)
