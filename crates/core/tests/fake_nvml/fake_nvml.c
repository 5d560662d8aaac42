/*
 * A fake NVML library for wattprint's tests. It exports the C symbols that nvml-wrapper 0.13
 * calls for the functions wattprint uses, with the same signatures as nvml.h, and nothing else
 * (nvml-wrapper-sys resolves every symbol at load time but stores a missing one as an error
 * that surfaces only when that function is called).
 *
 * Two GPUs:
 *   GPU 0: supports the total-energy counter (nvmlDeviceGetTotalEnergyConsumption).
 *   GPU 1: returns NVML_ERROR_NOT_SUPPORTED for total energy; power only.
 * plus one MIG instance (not enumerated by index) whose parent is GPU 1, reachable by UUID.
 *
 * The state is driven by the test through a text file named by the environment variable
 * FAKE_NVML_STATE, re-read on every call. Lines are `key=value`:
 *   energy0_mj=<u64>       GPU 0 energy counter (mJ)
 *   power0_mw, power1_mw   power usage (mW)
 *   limit0_mw, limit1_mw   enforced power limit (mW); 0 = NOT_SUPPORTED
 *   pids0, pids1           comma-separated compute PIDs
 *   gpids0, gpids1         comma-separated graphics PIDs
 *   fail_pids1=1           GPU 1 process queries return NVML_ERROR_UNKNOWN
 *   fail_power1=1          GPU 1 power query returns NVML_ERROR_UNKNOWN
 *   count=<n>              number of GPUs reported (0..2, default 2)
 *   mig1=1                 GPU 1 is in MIG mode with two instances: the 1-slice one below and
 *                          a 2-slice one (MIG-0b0b…); the card has 7 slices
 *   util0, util1           per-process utilisation samples `pid:sm%,pid:sm%`
 *                          (nvmlDeviceGetProcessUtilization; none: NVML_ERROR_NOT_FOUND)
 * Unknown keys are ignored; missing keys take the defaults below.
 *
 * Build: cc -shared -fPIC -o libfake_nvml.so fake_nvml.c
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef unsigned int nvmlReturn_t;
#define NVML_SUCCESS 0u
#define NVML_ERROR_UNINITIALIZED 1u
#define NVML_ERROR_INVALID_ARGUMENT 2u
#define NVML_ERROR_NOT_SUPPORTED 3u
#define NVML_ERROR_NOT_FOUND 6u
#define NVML_ERROR_INSUFFICIENT_SIZE 7u
#define NVML_ERROR_UNKNOWN 999u

struct nvmlDevice_st {
    unsigned int index;
    int is_mig;
    const char *name;
    const char *uuid;
};
typedef struct nvmlDevice_st *nvmlDevice_t;

/* nvmlProcessInfo_t as in nvml.h (v2 layout, used by the _v3 process queries). */
typedef struct {
    unsigned int pid;
    unsigned long long usedGpuMemory;
    unsigned int gpuInstanceId;
    unsigned int computeInstanceId;
} nvmlProcessInfo_t;

static struct nvmlDevice_st GPUS[2] = {
    {0, 0, "NVIDIA Fake A100 (energy counter)", "GPU-8932f937-d72c-4106-c12f-20bd9faed9f6"},
    {1, 0, "NVIDIA Fake T4 (power only)", "GPU-1a2b3c4d-0000-1111-2222-333344445555"},
};
static struct nvmlDevice_st MIG = {1, 1, "NVIDIA Fake T4 MIG 1g.5gb",
                                   "MIG-5c6d7e8f-aaaa-bbbb-cccc-ddddeeeeffff"};
static struct nvmlDevice_st MIG2 = {1, 2, "NVIDIA Fake T4 MIG 2g.10gb",
                                    "MIG-0b0b0b0b-aaaa-bbbb-cccc-ddddeeeeffff"};

static int init_count = 0;

#define MAX_PIDS 64
struct state {
    unsigned long long energy0_mj;
    unsigned int power_mw[2];
    unsigned int limit_mw[2];
    unsigned int pids[2][MAX_PIDS];
    unsigned int npids[2];
    unsigned int gpids[2][MAX_PIDS];
    unsigned int ngpids[2];
    int fail_pids1;
    int fail_power1;
    unsigned int count;
    int mig1;
    unsigned int util_pid[2][MAX_PIDS];
    unsigned int util_sm[2][MAX_PIDS];
    unsigned int nutil[2];
};

static void parse_util(const char *v, unsigned int *pid, unsigned int *sm, unsigned int *n) {
    *n = 0;
    while (*v && *n < MAX_PIDS) {
        char *end;
        unsigned long p = strtoul(v, &end, 10);
        if (end == v || *end != ':') break;
        v = end + 1;
        unsigned long u = strtoul(v, &end, 10);
        if (end == v) break;
        pid[*n] = (unsigned int)p;
        sm[(*n)++] = (unsigned int)u;
        v = end;
        if (*v == ',') v++;
    }
}

static void parse_pids(const char *v, unsigned int *out, unsigned int *n) {
    *n = 0;
    while (*v && *n < MAX_PIDS) {
        char *end;
        unsigned long p = strtoul(v, &end, 10);
        if (end == v) break;
        out[(*n)++] = (unsigned int)p;
        v = end;
        if (*v == ',') v++;
    }
}

static void read_state(struct state *s) {
    memset(s, 0, sizeof *s);
    s->power_mw[0] = 0;
    s->power_mw[1] = 0;
    s->limit_mw[0] = 300000;
    s->limit_mw[1] = 70000;
    s->count = 2;
    const char *path = getenv("FAKE_NVML_STATE");
    if (!path) return;
    FILE *f = fopen(path, "r");
    if (!f) return;
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        char *eq = strchr(line, '=');
        if (!eq) continue;
        *eq = 0;
        const char *k = line, *v = eq + 1;
        if (!strcmp(k, "energy0_mj")) s->energy0_mj = strtoull(v, NULL, 10);
        else if (!strcmp(k, "power0_mw")) s->power_mw[0] = (unsigned int)strtoul(v, NULL, 10);
        else if (!strcmp(k, "power1_mw")) s->power_mw[1] = (unsigned int)strtoul(v, NULL, 10);
        else if (!strcmp(k, "limit0_mw")) s->limit_mw[0] = (unsigned int)strtoul(v, NULL, 10);
        else if (!strcmp(k, "limit1_mw")) s->limit_mw[1] = (unsigned int)strtoul(v, NULL, 10);
        else if (!strcmp(k, "pids0")) parse_pids(v, s->pids[0], &s->npids[0]);
        else if (!strcmp(k, "pids1")) parse_pids(v, s->pids[1], &s->npids[1]);
        else if (!strcmp(k, "gpids0")) parse_pids(v, s->gpids[0], &s->ngpids[0]);
        else if (!strcmp(k, "gpids1")) parse_pids(v, s->gpids[1], &s->ngpids[1]);
        else if (!strcmp(k, "fail_pids1")) s->fail_pids1 = atoi(v);
        else if (!strcmp(k, "fail_power1")) s->fail_power1 = atoi(v);
        else if (!strcmp(k, "count")) s->count = (unsigned int)strtoul(v, NULL, 10);
        else if (!strcmp(k, "mig1")) s->mig1 = atoi(v);
        else if (!strcmp(k, "util0")) parse_util(v, s->util_pid[0], s->util_sm[0], &s->nutil[0]);
        else if (!strcmp(k, "util1")) parse_util(v, s->util_pid[1], s->util_sm[1], &s->nutil[1]);
    }
    fclose(f);
    if (s->count > 2) s->count = 2;
}

/* A physical GPU handle this library handed out, or NULL. */
static struct nvmlDevice_st *gpu(nvmlDevice_t d) {
    if (d == &GPUS[0] || d == &GPUS[1]) return d;
    return NULL;
}

static nvmlReturn_t copy_str(const char *src, char *dst, unsigned int len) {
    if (!dst) return NVML_ERROR_INVALID_ARGUMENT;
    if (strlen(src) + 1 > len) return NVML_ERROR_INSUFFICIENT_SIZE;
    strcpy(dst, src);
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlInit_v2(void) {
    init_count++;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlInitWithFlags(unsigned int flags) {
    (void)flags;
    return nvmlInit_v2();
}

nvmlReturn_t nvmlShutdown(void) {
    if (init_count == 0) return NVML_ERROR_UNINITIALIZED;
    init_count--;
    return NVML_SUCCESS;
}

const char *nvmlErrorString(nvmlReturn_t r) {
    switch (r) {
    case NVML_SUCCESS: return "Success";
    case NVML_ERROR_UNINITIALIZED: return "Uninitialized";
    case NVML_ERROR_INVALID_ARGUMENT: return "Invalid Argument";
    case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
    case NVML_ERROR_NOT_FOUND: return "Not Found";
    case NVML_ERROR_INSUFFICIENT_SIZE: return "Insufficient Size";
    default: return "Unknown Error";
    }
}

nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length) {
    if (!init_count) return NVML_ERROR_UNINITIALIZED;
    return copy_str("555.42.06-fake", version, length);
}

nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count) {
    if (!init_count) return NVML_ERROR_UNINITIALIZED;
    if (!count) return NVML_ERROR_INVALID_ARGUMENT;
    struct state s;
    read_state(&s);
    *count = s.count;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device) {
    if (!init_count) return NVML_ERROR_UNINITIALIZED;
    struct state s;
    read_state(&s);
    if (!device || index >= s.count) return NVML_ERROR_INVALID_ARGUMENT;
    *device = &GPUS[index];
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetHandleByUUID(const char *uuid, nvmlDevice_t *device) {
    if (!init_count) return NVML_ERROR_UNINITIALIZED;
    if (!uuid || !device) return NVML_ERROR_INVALID_ARGUMENT;
    for (int i = 0; i < 2; i++) {
        if (!strcmp(uuid, GPUS[i].uuid)) {
            *device = &GPUS[i];
            return NVML_SUCCESS;
        }
    }
    if (!strcmp(uuid, MIG.uuid)) {
        *device = &MIG;
        return NVML_SUCCESS;
    }
    if (!strcmp(uuid, MIG2.uuid)) {
        *device = &MIG2;
        return NVML_SUCCESS;
    }
    return NVML_ERROR_NOT_FOUND;
}

nvmlReturn_t nvmlDeviceGetDeviceHandleFromMigDeviceHandle(nvmlDevice_t mig, nvmlDevice_t *device) {
    if (!init_count) return NVML_ERROR_UNINITIALIZED;
    if ((mig != &MIG && mig != &MIG2) || !device) return NVML_ERROR_INVALID_ARGUMENT;
    *device = &GPUS[MIG.index];
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetIndex(nvmlDevice_t device, unsigned int *index) {
    if (!init_count) return NVML_ERROR_UNINITIALIZED;
    struct nvmlDevice_st *d = gpu(device);
    if (!d || !index) return NVML_ERROR_INVALID_ARGUMENT;
    *index = d->index;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char *name, unsigned int length) {
    if (!init_count) return NVML_ERROR_UNINITIALIZED;
    struct nvmlDevice_st *d = gpu(device);
    if (!d) return NVML_ERROR_INVALID_ARGUMENT;
    return copy_str(d->name, name, length);
}

nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char *uuid, unsigned int length) {
    if (!init_count) return NVML_ERROR_UNINITIALIZED;
    struct nvmlDevice_st *d = gpu(device);
    if (device == &MIG || device == &MIG2) d = device;
    if (!d) return NVML_ERROR_INVALID_ARGUMENT;
    return copy_str(d->uuid, uuid, length);
}

nvmlReturn_t nvmlDeviceGetTotalEnergyConsumption(nvmlDevice_t device, unsigned long long *energy) {
    if (!init_count) return NVML_ERROR_UNINITIALIZED;
    struct nvmlDevice_st *d = gpu(device);
    if (!d || !energy) return NVML_ERROR_INVALID_ARGUMENT;
    if (d->index != 0) return NVML_ERROR_NOT_SUPPORTED;
    struct state s;
    read_state(&s);
    *energy = s.energy0_mj;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t device, unsigned int *power) {
    if (!init_count) return NVML_ERROR_UNINITIALIZED;
    struct nvmlDevice_st *d = gpu(device);
    if (!d || !power) return NVML_ERROR_INVALID_ARGUMENT;
    struct state s;
    read_state(&s);
    if (d->index == 1 && s.fail_power1) return NVML_ERROR_UNKNOWN;
    *power = s.power_mw[d->index];
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetEnforcedPowerLimit(nvmlDevice_t device, unsigned int *limit) {
    if (!init_count) return NVML_ERROR_UNINITIALIZED;
    struct nvmlDevice_st *d = gpu(device);
    if (!d || !limit) return NVML_ERROR_INVALID_ARGUMENT;
    struct state s;
    read_state(&s);
    if (s.limit_mw[d->index] == 0) return NVML_ERROR_NOT_SUPPORTED;
    *limit = s.limit_mw[d->index];
    return NVML_SUCCESS;
}

/* nvml.h semantics: with *count too small (or infos NULL) return INSUFFICIENT_SIZE and set
 * *count to the number needed; with no processes return SUCCESS and *count = 0. */
static nvmlReturn_t processes(nvmlDevice_t device, unsigned int *count, nvmlProcessInfo_t *infos,
                              int graphics) {
    if (!init_count) return NVML_ERROR_UNINITIALIZED;
    struct nvmlDevice_st *d = gpu(device);
    if (!d || !count) return NVML_ERROR_INVALID_ARGUMENT;
    struct state s;
    read_state(&s);
    if (d->index == 1 && s.fail_pids1) return NVML_ERROR_UNKNOWN;
    unsigned int n = graphics ? s.ngpids[d->index] : s.npids[d->index];
    const unsigned int *p = graphics ? s.gpids[d->index] : s.pids[d->index];
    if (n == 0) {
        *count = 0;
        return NVML_SUCCESS;
    }
    if (!infos || *count < n) {
        *count = n;
        return NVML_ERROR_INSUFFICIENT_SIZE;
    }
    for (unsigned int i = 0; i < n; i++) {
        infos[i].pid = p[i];
        infos[i].usedGpuMemory = 1024ull * 1024ull * (i + 1);
        infos[i].gpuInstanceId = 0xFFFFFFFFu;
        infos[i].computeInstanceId = 0xFFFFFFFFu;
    }
    *count = n;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t device, unsigned int *count,
                                                     nvmlProcessInfo_t *infos) {
    return processes(device, count, infos, 0);
}

nvmlReturn_t nvmlDeviceGetGraphicsRunningProcesses_v3(nvmlDevice_t device, unsigned int *count,
                                                      nvmlProcessInfo_t *infos) {
    return processes(device, count, infos, 1);
}

/* ---- MIG (GPU 1 with mig1=1) ---- */
#define NVML_ERROR_NOT_FOUND_ 6u
nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t device, unsigned int *current, unsigned int *pending) {
    if (!init_count) return NVML_ERROR_UNINITIALIZED;
    struct nvmlDevice_st *d = gpu(device);
    if (!d || !current || !pending) return NVML_ERROR_INVALID_ARGUMENT;
    if (d->index == 0) return NVML_ERROR_NOT_SUPPORTED;
    struct state s;
    read_state(&s);
    *current = *pending = s.mig1 ? 1u : 0u;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetMaxMigDeviceCount(nvmlDevice_t device, unsigned int *count) {
    if (!init_count) return NVML_ERROR_UNINITIALIZED;
    struct nvmlDevice_st *d = gpu(device);
    if (!d || !count) return NVML_ERROR_INVALID_ARGUMENT;
    if (d->index == 0) return NVML_ERROR_NOT_SUPPORTED;
    *count = 7;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetMigDeviceHandleByIndex(nvmlDevice_t device, unsigned int index,
                                                 nvmlDevice_t *mig) {
    if (!init_count) return NVML_ERROR_UNINITIALIZED;
    struct nvmlDevice_st *d = gpu(device);
    if (!d || !mig) return NVML_ERROR_INVALID_ARGUMENT;
    struct state s;
    read_state(&s);
    if (d->index != 1 || !s.mig1) return NVML_ERROR_NOT_SUPPORTED;
    if (index == 0) *mig = &MIG;
    else if (index == 1) *mig = &MIG2;
    else return NVML_ERROR_NOT_FOUND_;
    return NVML_SUCCESS;
}

/* nvmlDeviceAttributes_t as in nvml.h. */
typedef struct {
    unsigned int multiprocessorCount;
    unsigned int sharedCopyEngineCount;
    unsigned int sharedDecoderCount;
    unsigned int sharedEncoderCount;
    unsigned int sharedJpegCount;
    unsigned int sharedOfaCount;
    unsigned int gpuInstanceSliceCount;
    unsigned int computeInstanceSliceCount;
    unsigned long long memorySizeMB;
} nvmlDeviceAttributes_t;

nvmlReturn_t nvmlDeviceGetAttributes_v2(nvmlDevice_t device, nvmlDeviceAttributes_t *a) {
    if (!init_count) return NVML_ERROR_UNINITIALIZED;
    if (!a) return NVML_ERROR_INVALID_ARGUMENT;
    if (device != &MIG && device != &MIG2) return NVML_ERROR_NOT_SUPPORTED;
    memset(a, 0, sizeof *a);
    unsigned int slices = (unsigned int)((struct nvmlDevice_st *)device)->is_mig;
    a->multiprocessorCount = 14 * slices;
    a->gpuInstanceSliceCount = slices;
    a->computeInstanceSliceCount = slices;
    a->memorySizeMB = 5120ull * slices;
    return NVML_SUCCESS;
}

/* nvmlGpuInstanceProfileInfo_t as in nvml.h. */
typedef struct {
    unsigned int id, isP2pSupported, sliceCount, instanceCount, multiprocessorCount,
        copyEngineCount, decoderCount, encoderCount, jpegCount, ofaCount;
    unsigned long long memorySizeMB;
} nvmlGpuInstanceProfileInfo_t;

nvmlReturn_t nvmlDeviceGetGpuInstanceProfileInfo(nvmlDevice_t device, unsigned int profile,
                                                 nvmlGpuInstanceProfileInfo_t *info) {
    if (!init_count) return NVML_ERROR_UNINITIALIZED;
    struct nvmlDevice_st *d = gpu(device);
    if (!d || !info) return NVML_ERROR_INVALID_ARGUMENT;
    if (d->index != 1) return NVML_ERROR_NOT_SUPPORTED;
    if (profile != 0) return NVML_ERROR_NOT_SUPPORTED; /* only the 1-slice profile here */
    memset(info, 0, sizeof *info);
    info->sliceCount = 1;
    info->instanceCount = 7;
    info->multiprocessorCount = 14;
    return NVML_SUCCESS;
}

/* ---- per-process utilisation ---- */
typedef struct {
    unsigned int pid;
    unsigned long long timeStamp;
    unsigned int smUtil, memUtil, encUtil, decUtil;
} nvmlProcessUtilizationSample_t;

nvmlReturn_t nvmlDeviceGetProcessUtilization(nvmlDevice_t device,
                                             nvmlProcessUtilizationSample_t *samples,
                                             unsigned int *count, unsigned long long last_seen) {
    if (!init_count) return NVML_ERROR_UNINITIALIZED;
    struct nvmlDevice_st *d = gpu(device);
    if (!d || !count) return NVML_ERROR_INVALID_ARGUMENT;
    (void)last_seen;
    struct state s;
    read_state(&s);
    unsigned int n = s.nutil[d->index];
    if (n == 0) return NVML_ERROR_NOT_FOUND_;
    if (!samples || *count < n) {
        *count = n;
        return NVML_ERROR_INSUFFICIENT_SIZE;
    }
    for (unsigned int i = 0; i < n; i++) {
        samples[i].pid = s.util_pid[d->index][i];
        samples[i].timeStamp = 1000000ull + i;
        samples[i].smUtil = s.util_sm[d->index][i];
        samples[i].memUtil = 0;
        samples[i].encUtil = 0;
        samples[i].decUtil = 0;
    }
    *count = n;
    return NVML_SUCCESS;
}
