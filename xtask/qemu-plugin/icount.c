/*
 * ramkey's instruction counter: a QEMU TCG plugin (plugin API version 1).
 *
 * The API is declared by hand in qemu-plugin-api.h. The plugin counts every executed
 * guest instruction (an inline add per instruction, so the count is exact and identical from
 * run to run) and, when given the addresses of two marker functions, records the count
 * between each call of `begin` and the next call of `end`.
 *
 * Arguments (-plugin icount.so,begin=0x...,end=0x...,out=path):
 *   begin, end  addresses of the marker functions (hex)
 *   out         file to write results to: one line "region N: M instructions" per region,
 *               then "total: M instructions"
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "qemu-plugin-api.h"

#define MAX_REGIONS 64

static uint64_t executed;          /* instructions executed so far (single vCPU) */
static uint64_t begin_address, end_address;
static uint64_t region_start;
static int in_region;
static uint64_t regions[MAX_REGIONS];
static int region_count;
static char out_path[4096];

static void on_begin(unsigned int vcpu, void *userdata)
{
    (void)vcpu; (void)userdata;
    region_start = executed;
    in_region = 1;
}

static void on_end(unsigned int vcpu, void *userdata)
{
    (void)vcpu; (void)userdata;
    if (in_region && region_count < MAX_REGIONS) {
        regions[region_count++] = executed - region_start;
    }
    in_region = 0;
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    size_t n = qemu_plugin_tb_n_insns(tb);
    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        uint64_t pc = qemu_plugin_insn_vaddr(insn);
        /* Marker callbacks run before the marker's own first instruction is counted. */
        if (begin_address && pc == begin_address) {
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_begin, QEMU_PLUGIN_CB_NO_REGS, NULL);
        }
        if (end_address && pc == end_address) {
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_end, QEMU_PLUGIN_CB_NO_REGS, NULL);
        }
        qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64, &executed, 1);
    }
}

static void on_plugin_exit(qemu_plugin_id_t id, void *userdata)
{
    (void)id; (void)userdata;
    FILE *out = results_open(out_path);
    if (!out) {
        return;
    }
    for (int i = 0; i < region_count; i++) {
        fprintf(out, "region %d: %" PRIu64 " instructions\n", i, regions[i]);
    }
    fprintf(out, "total: %" PRIu64 " instructions\n", executed);
    results_close(out);
}

__attribute__((visibility("default")))
int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv)
{
    (void)info;
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "begin=", 6) == 0) {
            begin_address = strtoull(argv[i] + 6, NULL, 16);
        } else if (strncmp(argv[i], "end=", 4) == 0) {
            end_address = strtoull(argv[i] + 4, NULL, 16);
        } else if (strncmp(argv[i], "out=", 4) == 0) {
            snprintf(out_path, sizeof out_path, "%s", argv[i] + 4);
        } else {
            fprintf(stderr, "icount: unknown argument %s\n", argv[i]);
            return -1;
        }
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_atexit_cb(id, on_plugin_exit, NULL);
    return 0;
}
