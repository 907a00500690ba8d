/*
 * ramkey's flash-bus checker: a QEMU TCG plugin (plugin API version 1).
 *
 * On the ESP8266 the flash-mapped window (0x40200000..0x40300000, code and whatever data the
 * firmware keeps there) answers only aligned 32-bit loads: a byte or half-word load, an
 * unaligned load or any store there raises LoadStoreError on the chip. QEMU's lx106 model
 * maps the window as plain memory and lets all of them through, so this plugin watches every
 * guest memory access instead and reports the ones the chip would refuse.
 *
 * Instruction fetches are not memory callbacks, so only data accesses are seen: l32r literal
 * loads (32-bit, fine) and reads of data placed in flash.
 *
 * Arguments (-plugin flashbus.so,out=path[,data_from=0x...,data_to=0x...]):
 *   out        file to write: "loads32 N", "data_loads32 N", "bad N", then up to 16 lines
 *              "bad pc=0x... addr=0x... size=S store=0|1"
 *   data_from, data_to
 *              a sub-range whose 32-bit loads are also counted ("data_loads32 N"), so a check
 *              can tell that the data it expects in flash was really read from there
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "qemu-plugin-api.h"

#define MAX_REPORTED 16

struct bad {
    uint64_t pc, addr;
    unsigned size;
    int store;
};

/* The flash-mapped window. */
#define FLASH_FROM 0x40200000u
#define FLASH_TO 0x40300000u

static uint64_t data_from, data_to;
static uint64_t loads32, data_loads32, bad_count;
static struct bad reported[MAX_REPORTED];
static char out_path[4096];

static void on_access(unsigned int vcpu, qemu_plugin_meminfo_t info, uint64_t vaddr, void *userdata)
{
    (void)vcpu;
    if (vaddr < FLASH_FROM || vaddr >= FLASH_TO) {
        return;
    }
    unsigned size = 1u << qemu_plugin_mem_size_shift(info);
    int store = qemu_plugin_mem_is_store(info) ? 1 : 0;
    if (!store && size == 4 && (vaddr & 3) == 0) {
        loads32++;
        if (vaddr >= data_from && vaddr < data_to) {
            data_loads32++;
        }
        return;
    }
    if (bad_count < MAX_REPORTED) {
        reported[bad_count] = (struct bad){ (uint64_t)(uintptr_t)userdata, vaddr, size, store };
    }
    bad_count++;
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    size_t n = qemu_plugin_tb_n_insns(tb);
    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        uintptr_t pc = (uintptr_t)qemu_plugin_insn_vaddr(insn);
        qemu_plugin_register_vcpu_mem_cb(insn, on_access, QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_MEM_RW,
                                         (void *)pc);
    }
}

static void on_plugin_exit(qemu_plugin_id_t id, void *userdata)
{
    (void)id; (void)userdata;
    FILE *out = results_open(out_path);
    if (!out) {
        return;
    }
    fprintf(out, "loads32 %" PRIu64 "\n", loads32);
    fprintf(out, "data_loads32 %" PRIu64 "\n", data_loads32);
    fprintf(out, "bad %" PRIu64 "\n", bad_count);
    for (uint64_t i = 0; i < bad_count && i < MAX_REPORTED; i++) {
        fprintf(out, "bad pc=0x%08" PRIx64 " addr=0x%08" PRIx64 " size=%u store=%d\n", reported[i].pc,
                reported[i].addr, reported[i].size, reported[i].store);
    }
    results_close(out);
}

__attribute__((visibility("default")))
int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv)
{
    (void)info;
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "out=", 4) == 0) {
            snprintf(out_path, sizeof out_path, "%s", argv[i] + 4);
        } else if (strncmp(argv[i], "data_from=", 10) == 0) {
            data_from = strtoull(argv[i] + 10, NULL, 16);
        } else if (strncmp(argv[i], "data_to=", 8) == 0) {
            data_to = strtoull(argv[i] + 8, NULL, 16);
        } else {
            fprintf(stderr, "flashbus: unknown argument %s\n", argv[i]);
            return -1;
        }
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_atexit_cb(id, on_plugin_exit, NULL);
    return 0;
}
