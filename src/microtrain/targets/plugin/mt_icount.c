/* microtrain instruction counter: a QEMU TCG plugin (plugin API version 1,
 * QEMU 7.2). It counts every guest instruction executed and records the
 * running count each time the guest executes the first instruction of the
 * marker function (the generated code calls it at every layer boundary).
 *
 * Arguments (-plugin libmt_icount.so,marker=0x<hex address>,out=<file>):
 *   marker  guest address of the marker function's first instruction
 *   out     file written at exit: "total <n>" then one "mark <n>" per marker hit
 *
 * Counts are instructions, not cycles: QEMU models no pipeline or memory
 * wait states. They are exact and identical from run to run.
 *
 * Debian's QEMU ships no qemu-plugin.h, so the few API entry points used here
 * are declared below, matching QEMU 7.2's include/qemu/qemu-plugin.h. */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef uint64_t qemu_plugin_id_t;
typedef struct qemu_info_t qemu_info_t;           /* opaque here: not read */
struct qemu_plugin_tb;
struct qemu_plugin_insn;
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_CB_R_REGS, QEMU_PLUGIN_CB_RW_REGS };
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *insn);
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *tb, enum qemu_plugin_op op,
                                              void *ptr, uint64_t imm);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn, qemu_plugin_vcpu_udata_cb_t cb,
                                            enum qemu_plugin_cb_flags flags, void *userdata);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);

#define EXPORT __attribute__((visibility("default")))
EXPORT int qemu_plugin_version = 1;

static uint64_t executed;           /* instructions executed so far (single vCPU) */
static uint64_t marker_addr = UINT64_MAX;
static char *out_path;
static uint64_t *marks;              /* `executed` at each marker hit */
static size_t n_marks, cap_marks;

static void on_marker(unsigned int vcpu_index, void *userdata)
{
    uint64_t *before_tb = userdata;  /* instructions of this block before the marker */
    (void)vcpu_index;
    if (n_marks == cap_marks) {
        cap_marks = cap_marks ? 2 * cap_marks : 1024;
        marks = realloc(marks, cap_marks * sizeof *marks);
        if (!marks) { fprintf(stderr, "mt_icount: out of memory\n"); exit(70); }
    }
    /* The block's whole count was added on entry; subtract the part after
     * the marker so the stamp is "instructions before the marker". */
    marks[n_marks++] = executed - *before_tb;
}

/* Counting per translation block (one inline add on block entry) is exact
 * here: our guests take no interrupts, and a block left early by a trap
 * (semihosting) is counted the same way in every run. */
static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    size_t n = qemu_plugin_tb_n_insns(tb), i;
    (void)id;
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &executed, n);
    for (i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        if (qemu_plugin_insn_vaddr(insn) == marker_addr) {
            uint64_t *after = malloc(sizeof *after);   /* lives as long as the block */
            if (!after) { fprintf(stderr, "mt_icount: out of memory\n"); exit(70); }
            *after = (uint64_t)(n - i);
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_marker, QEMU_PLUGIN_CB_NO_REGS, after);
        }
    }
}

static void on_exit_write(qemu_plugin_id_t id, void *userdata)
{
    FILE *f = fopen(out_path, "w");
    size_t i;
    (void)id; (void)userdata;
    if (!f) { fprintf(stderr, "mt_icount: cannot write %s\n", out_path); return; }
    fprintf(f, "total %" PRIu64 "\n", executed);
    for (i = 0; i < n_marks; i++) fprintf(f, "mark %" PRIu64 "\n", marks[i]);
    fclose(f);
}

EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv)
{
    int i;
    (void)info;
    for (i = 0; i < argc; i++) {
        if (strncmp(argv[i], "marker=", 7) == 0) marker_addr = strtoull(argv[i] + 7, NULL, 0);
        else if (strncmp(argv[i], "out=", 4) == 0) out_path = strdup(argv[i] + 4);
        else { fprintf(stderr, "mt_icount: unknown argument '%s'\n", argv[i]); return -1; }
    }
    if (!out_path) { fprintf(stderr, "mt_icount: missing out=<file>\n"); return -1; }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_atexit_cb(id, on_exit_write, NULL);
    return 0;
}
