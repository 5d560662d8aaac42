/*
 * A fake ROCm SMI (librocm_smi64.so) for wattprint's tests, with the signatures of rocm_smi.h.
 * Like Debian's real library on a machine without AMD GPUs, it crashes the process (abort) when
 * asked about a device the count does not list: a test passes only if wattprint never does that.
 *
 * State (file named by FAKE_ROCM_SMI_STATE, see fake_state.h): count, init_status, and per GPU
 * i: energy<i>, res<i>, ens<i> (status of rsmi_dev_energy_count_get; 2 = NOT_SUPPORTED),
 * cap<i> (power cap, W), name<i>.
 *
 * Build: cc -shared -fPIC -o librocm_smi64.so.1 fake_rocm_smi.c
 */
#include <stdint.h>
#include <stddef.h>
#include "fake_state.h"

typedef uint32_t rsmi_status_t;
#define RSMI_STATUS_SUCCESS 0
#define RSMI_STATUS_INVALID_ARGS 1

static int initialised = 0;
static struct fake_state st;

/* Every per-device call goes through here first. */
static struct fake_gpu *device(uint32_t ix) {
    fake_read_state("FAKE_ROCM_SMI_STATE", &st);
    if (ix >= st.count) {
        fprintf(stderr, "fake librocm_smi64: device %u asked about, but the count is %u\n", ix,
                st.count);
        abort();
    }
    return &st.gpu[ix];
}

rsmi_status_t rsmi_init(uint64_t flags) {
    (void)flags;
    fake_read_state("FAKE_ROCM_SMI_STATE", &st);
    if (st.init_status) return st.init_status;
    initialised++;
    return RSMI_STATUS_SUCCESS;
}

rsmi_status_t rsmi_shut_down(void) {
    if (initialised) initialised--;
    return RSMI_STATUS_SUCCESS;
}

rsmi_status_t rsmi_num_monitor_devices(uint32_t *n) {
    if (!n) return RSMI_STATUS_INVALID_ARGS;
    fake_read_state("FAKE_ROCM_SMI_STATE", &st);
    *n = initialised ? st.count : 0;
    return RSMI_STATUS_SUCCESS;
}

rsmi_status_t rsmi_dev_energy_count_get(uint32_t ix, uint64_t *power, float *res, uint64_t *ts) {
    struct fake_gpu *g = device(ix);
    if (!power || !res || !ts) return RSMI_STATUS_INVALID_ARGS;
    if (g->energy_status) return g->energy_status;
    *power = g->energy;
    *res = g->resolution;
    *ts = 1;
    return RSMI_STATUS_SUCCESS;
}

rsmi_status_t rsmi_dev_name_get(uint32_t ix, char *name, size_t len) {
    struct fake_gpu *g = device(ix);
    if (!name || len == 0) return RSMI_STATUS_INVALID_ARGS;
    snprintf(name, len, "%s", g->name);
    return RSMI_STATUS_SUCCESS;
}

rsmi_status_t rsmi_dev_unique_id_get(uint32_t ix, uint64_t *id) {
    device(ix);
    if (!id) return RSMI_STATUS_INVALID_ARGS;
    *id = 0x1234abcd0000ull + ix;
    return RSMI_STATUS_SUCCESS;
}

rsmi_status_t rsmi_dev_power_cap_get(uint32_t ix, uint32_t sensor, uint64_t *cap) {
    struct fake_gpu *g = device(ix);
    if (!cap || sensor != 0) return RSMI_STATUS_INVALID_ARGS;
    if (g->cap_w == 0xFFFF) return 2;
    *cap = (uint64_t)g->cap_w * 1000000ull;
    return RSMI_STATUS_SUCCESS;
}
