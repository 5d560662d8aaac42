/*
 * A fake amdsmi (libamd_smi.so) for wattprint's tests: the functions wattprint calls, with the
 * signatures and structure layouts of ROCm/amdsmi's include/amd_smi/amdsmi.h at library version
 * 24.7 (amdsmi_power_info_t with current_socket_power first). Each GPU is its own socket, as
 * amdsmi reports discrete GPUs.
 *
 * State (file named by FAKE_AMDSMI_STATE, see fake_state.h): count, init_status, year (library
 * version year, default 24), and per GPU i: energy<i> (accumulator), res<i> (µJ per unit,
 * default 15.259), ens<i> (status of amdsmi_get_energy_count, e.g. 2 = NOT_SUPPORTED),
 * cur<i>/avg<i> (socket power, W; 65535 = not available), cap<i> (power cap, W), name<i>,
 * procs<i> (the processes on it, `pid:gfx_ns,...`, as amdsmi_get_gpu_process_list gives them),
 * pls<i> (status of amdsmi_get_gpu_process_list).
 *
 * Build: cc -shared -fPIC -o libamd_smi.so fake_amdsmi.c
 */
#include <stdint.h>
#include "fake_state.h"

typedef uint32_t amdsmi_status_t;
typedef void *amdsmi_socket_handle;
typedef void *amdsmi_processor_handle;
#define AMDSMI_STATUS_SUCCESS 0
#define AMDSMI_STATUS_INVAL 1
#define AMDSMI_STATUS_NOT_INIT 32
#define AMDSMI_INIT_AMD_GPUS (1 << 1)

typedef struct {
    uint32_t year, major, minor, release;
    const char *build;
} amdsmi_version_t;

typedef struct {
    uint32_t current_socket_power;
    uint32_t average_socket_power;
    uint32_t gfx_voltage;
    uint32_t soc_voltage;
    uint32_t mem_voltage;
    uint32_t power_limit;
    uint32_t reserved[11];
} amdsmi_power_info_t;

typedef struct {
    char market_name[256];
    uint32_t vendor_id;
    char vendor_name[64];
    uint32_t subvendor_id;
    uint64_t device_id;
    uint32_t rev_id;
    char asic_serial[32];
    uint32_t oam_id;
    uint32_t num_of_compute_units;
    uint64_t target_graphics_version;
    uint32_t reserved[15];
} amdsmi_asic_info_t;

typedef uint32_t amdsmi_process_handle_t;
typedef struct {
    char name[32];
    amdsmi_process_handle_t pid;
    uint64_t mem;
    struct engine_usage_ {
        uint64_t gfx;
        uint64_t enc;
        uint32_t reserved[12];
    } engine_usage;
    struct memory_usage_ {
        uint64_t gtt_mem;
        uint64_t cpu_mem;
        uint64_t vram_mem;
        uint32_t reserved[10];
    } memory_usage;
    char container_name[32];
    uint32_t reserved[4];
} amdsmi_proc_info_t;

static int initialised = 0;
/* Handles are addresses inside these arrays: socket i holds processor i. */
static char SOCKETS[FAKE_MAX_GPUS];
static char PROCS[FAKE_MAX_GPUS];

static struct fake_state st;
static void load(void) { fake_read_state("FAKE_AMDSMI_STATE", &st); }

static int proc_index(amdsmi_processor_handle h) {
    load();
    for (unsigned int i = 0; i < st.count; i++)
        if (h == &PROCS[i]) return (int)i;
    return -1;
}

amdsmi_status_t amdsmi_init(uint64_t flags) {
    load();
    if (flags != AMDSMI_INIT_AMD_GPUS) return AMDSMI_STATUS_INVAL;
    if (st.init_status) return st.init_status;
    initialised++;
    return AMDSMI_STATUS_SUCCESS;
}

amdsmi_status_t amdsmi_shut_down(void) {
    if (!initialised) return AMDSMI_STATUS_NOT_INIT;
    initialised--;
    return AMDSMI_STATUS_SUCCESS;
}

amdsmi_status_t amdsmi_get_lib_version(amdsmi_version_t *v) {
    if (!initialised) return AMDSMI_STATUS_NOT_INIT;
    if (!v) return AMDSMI_STATUS_INVAL;
    load();
    v->year = st.year;
    v->major = 7;
    v->minor = 0;
    v->release = 0;
    v->build = "fake";
    return AMDSMI_STATUS_SUCCESS;
}

amdsmi_status_t amdsmi_get_socket_handles(uint32_t *count, amdsmi_socket_handle *out) {
    if (!initialised) return AMDSMI_STATUS_NOT_INIT;
    if (!count) return AMDSMI_STATUS_INVAL;
    load();
    if (!out) {
        *count = st.count;
        return AMDSMI_STATUS_SUCCESS;
    }
    uint32_t n = *count < st.count ? *count : st.count;
    for (uint32_t i = 0; i < n; i++) out[i] = &SOCKETS[i];
    *count = n;
    return AMDSMI_STATUS_SUCCESS;
}

amdsmi_status_t amdsmi_get_processor_handles(amdsmi_socket_handle s, uint32_t *count,
                                             amdsmi_processor_handle *out) {
    if (!initialised) return AMDSMI_STATUS_NOT_INIT;
    if (!count) return AMDSMI_STATUS_INVAL;
    load();
    int i = -1;
    for (unsigned int k = 0; k < st.count; k++)
        if (s == &SOCKETS[k]) i = (int)k;
    if (i < 0) return AMDSMI_STATUS_INVAL;
    if (!out) {
        *count = 1;
        return AMDSMI_STATUS_SUCCESS;
    }
    if (*count < 1) return 41; /* INSUFFICIENT_SIZE */
    out[0] = &PROCS[i];
    *count = 1;
    return AMDSMI_STATUS_SUCCESS;
}

amdsmi_status_t amdsmi_get_energy_count(amdsmi_processor_handle h, uint64_t *acc, float *res,
                                        uint64_t *ts) {
    if (!initialised) return AMDSMI_STATUS_NOT_INIT;
    int i = proc_index(h);
    if (i < 0 || !acc || !res || !ts) return AMDSMI_STATUS_INVAL;
    if (i == 0) fake_note_read("FAKE_AMDSMI_STATE");
    if (st.gpu[i].energy_status) return st.gpu[i].energy_status;
    *acc = st.gpu[i].energy;
    *res = st.gpu[i].resolution;
    *ts = 123456789ull;
    return AMDSMI_STATUS_SUCCESS;
}

amdsmi_status_t amdsmi_get_power_info(amdsmi_processor_handle h, amdsmi_power_info_t *info) {
    if (!initialised) return AMDSMI_STATUS_NOT_INIT;
    int i = proc_index(h);
    if (i < 0 || !info) return AMDSMI_STATUS_INVAL;
    memset(info, 0, sizeof *info);
    info->current_socket_power = st.gpu[i].cur_w;
    info->average_socket_power = st.gpu[i].avg_w;
    info->gfx_voltage = info->soc_voltage = info->mem_voltage = 0xFFFF;
    info->power_limit = st.gpu[i].cap_w;
    /* as amdsmi: the status is the power cap's */
    return st.gpu[i].cap_w == 0xFFFF ? 2 : AMDSMI_STATUS_SUCCESS;
}

amdsmi_status_t amdsmi_get_gpu_asic_info(amdsmi_processor_handle h, amdsmi_asic_info_t *info) {
    if (!initialised) return AMDSMI_STATUS_NOT_INIT;
    int i = proc_index(h);
    if (i < 0 || !info) return AMDSMI_STATUS_INVAL;
    memset(info, 0, sizeof *info);
    snprintf(info->market_name, sizeof info->market_name, "%s", st.gpu[i].name);
    info->vendor_id = 0x1002;
    return AMDSMI_STATUS_SUCCESS;
}

amdsmi_status_t amdsmi_get_gpu_device_uuid(amdsmi_processor_handle h, unsigned int *len,
                                           char *uuid) {
    if (!initialised) return AMDSMI_STATUS_NOT_INIT;
    int i = proc_index(h);
    if (i < 0 || !len || !uuid) return AMDSMI_STATUS_INVAL;
    size_t n = strlen(st.gpu[i].uuid);
    if (*len < n + 1) return 41;
    memcpy(uuid, st.gpu[i].uuid, n + 1);
    *len = (unsigned int)n;
    return AMDSMI_STATUS_SUCCESS;
}

/* As amdsmi 24.x: *max_processes in = room in list, out = processes running; fewer rooms than
 * processes fill the list and return OUT_OF_RESOURCES (15). */
amdsmi_status_t amdsmi_get_gpu_process_list(amdsmi_processor_handle h, uint32_t *max_processes,
                                            amdsmi_proc_info_t *list) {
    if (!initialised) return AMDSMI_STATUS_NOT_INIT;
    int i = proc_index(h);
    if (i < 0 || !max_processes) return AMDSMI_STATUS_INVAL;
    if (i == 0) fake_note("FAKE_AMDSMI_STATE", ".lists");
    if (st.gpu[i].procs_status) return st.gpu[i].procs_status;
    uint32_t n = st.gpu[i].nprocs;
    uint32_t room = *max_processes;
    if (room && !list) return AMDSMI_STATUS_INVAL;
    for (uint32_t k = 0; k < n && k < room; k++) {
        memset(&list[k], 0, sizeof list[k]);
        snprintf(list[k].name, sizeof list[k].name, "python");
        list[k].pid = st.gpu[i].pid[k];
        list[k].mem = 1u << 20;
        list[k].engine_usage.gfx = st.gpu[i].gfx_ns[k];
        list[k].memory_usage.vram_mem = 1u << 20;
    }
    *max_processes = n;
    return room && room < n ? 15 : AMDSMI_STATUS_SUCCESS;
}
