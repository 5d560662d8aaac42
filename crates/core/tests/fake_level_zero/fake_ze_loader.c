/*
 * A fake Level Zero loader (libze_loader.so.1) with the Sysman functions wattprint calls, with
 * the signatures and structure layouts of oneapi-src/level-zero's zes_api.h and ze_api.h.
 * One Sysman driver; each device i has an optional card-level power domain (first) and `tiles<i>`
 * tile domains (onSubdevice = 1).
 *
 * State: a `key=value` file named by FAKE_ZE_STATE, re-read on every call:
 *   count                 devices (0..4, default 1)
 *   init_status           what zesInit returns (default 0)
 *   name<i>               model name (default "Intel(R) Data Center GPU Max 1550")
 *   card<i>               1 (default) if the device has a card-level domain
 *   tiles<i>              tile domains (0..2, default 2)
 *   e<i><d>               energy counter of domain d of device i (µJ); the card domain is d=0
 *   maxmw<i>              maxLimit of every domain of device i (mW; default 0 = unknown)
 *   fail<i>               what zesPowerGetEnergyCounter returns for device i (default 0)
 *
 * Build: cc -shared -fPIC -o libze_loader.so.1 fake_ze_loader.c
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef uint32_t ze_result_t;
typedef uint8_t ze_bool_t;
#define ZE_RESULT_SUCCESS 0
#define ZE_RESULT_ERROR_UNINITIALIZED 0x78000001u
#define ZE_RESULT_ERROR_INVALID_ARGUMENT 0x78000004u
#define ZE_RESULT_ERROR_INVALID_NULL_HANDLE 0x78000005u

typedef struct {
    uint32_t stype;
    void *pNext;
    uint32_t type;
    uint32_t vendorId;
    uint32_t deviceId;
    uint32_t flags;
    uint32_t subdeviceId;
    uint32_t coreClockRate;
    uint64_t maxMemAllocSize;
    uint32_t maxHardwareContexts;
    uint32_t maxCommandQueuePriority;
    uint32_t numThreadsPerEU;
    uint32_t physicalEUSimdWidth;
    uint32_t numEUsPerSubslice;
    uint32_t numSubslicesPerSlice;
    uint32_t numSlices;
    uint64_t timerResolution;
    uint32_t timestampValidBits;
    uint32_t kernelTimestampValidBits;
    uint8_t uuid[16];
    char name[256];
} ze_device_properties_t;

typedef struct {
    uint32_t stype;
    void *pNext;
    ze_device_properties_t core;
    uint32_t numSubdevices;
    char serialNumber[64];
    char boardNumber[64];
    char brandName[64];
    char modelName[64];
    char vendorName[64];
    char driverVersion[64];
} zes_device_properties_t;

typedef struct {
    uint32_t stype;
    void *pNext;
    ze_bool_t onSubdevice;
    uint32_t subdeviceId;
    ze_bool_t canControl;
    ze_bool_t isEnergyThresholdSupported;
    int32_t defaultLimit;
    int32_t minLimit;
    int32_t maxLimit;
} zes_power_properties_t;

typedef struct {
    uint64_t energy;
    uint64_t timestamp;
} zes_power_energy_counter_t;

#define MAXD 4
#define MAXP 3
struct dev {
    char name[64];
    int card, tiles;
    unsigned long long e[MAXP];
    int maxmw;
    unsigned int fail;
};
static struct {
    unsigned int count, init_status;
    struct dev d[MAXD];
} st;

static char DRIVER;
static char DEVS[MAXD];
static char PWR[MAXD][MAXP];
static int initialised = 0;

static void load(void) {
    memset(&st, 0, sizeof st);
    st.count = 1;
    for (int i = 0; i < MAXD; i++) {
        snprintf(st.d[i].name, sizeof st.d[i].name, "Intel(R) Data Center GPU Max 1550");
        st.d[i].card = 1;
        st.d[i].tiles = 2;
    }
    const char *path = getenv("FAKE_ZE_STATE");
    FILE *f = path ? fopen(path, "r") : NULL;
    if (!f) return;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        char *eq = strchr(line, '=');
        if (!eq) continue;
        *eq = 0;
        const char *k = line, *v = eq + 1;
        int i = -1, p = -1;
        if (!strcmp(k, "count")) st.count = (unsigned)strtoul(v, NULL, 10);
        else if (!strcmp(k, "init_status")) st.init_status = (unsigned)strtoul(v, NULL, 0);
        else if (sscanf(k, "name%d", &i) == 1 && i >= 0 && i < MAXD)
            snprintf(st.d[i].name, sizeof st.d[i].name, "%s", v);
        else if (sscanf(k, "card%d", &i) == 1 && i >= 0 && i < MAXD) st.d[i].card = atoi(v);
        else if (sscanf(k, "tiles%d", &i) == 1 && i >= 0 && i < MAXD) st.d[i].tiles = atoi(v);
        else if (sscanf(k, "maxmw%d", &i) == 1 && i >= 0 && i < MAXD) st.d[i].maxmw = atoi(v);
        else if (sscanf(k, "fail%d", &i) == 1 && i >= 0 && i < MAXD)
            st.d[i].fail = (unsigned)strtoul(v, NULL, 0);
        else if (k[0] == 'e' && strlen(k) == 3) {
            i = k[1] - '0';
            p = k[2] - '0';
            if (i >= 0 && i < MAXD && p >= 0 && p < MAXP) st.d[i].e[p] = strtoull(v, NULL, 10);
        }
    }
    fclose(f);
    if (st.count > MAXD) st.count = MAXD;
    for (int i = 0; i < MAXD; i++) {
        if (st.d[i].tiles < 0) st.d[i].tiles = 0;
        if (st.d[i].tiles > 2) st.d[i].tiles = 2;
    }
}

static int dev_index(void *h) {
    for (unsigned i = 0; i < st.count; i++)
        if (h == &DEVS[i]) return (int)i;
    return -1;
}

/* Domain d of device i exists when d < card + tiles; the card domain, when present, is d = 0. */
static int pwr_index(void *h, int *dev, int *dom) {
    for (unsigned i = 0; i < st.count; i++)
        for (int p = 0; p < st.d[i].card + st.d[i].tiles; p++)
            if (h == &PWR[i][p]) {
                *dev = (int)i;
                *dom = p;
                return 1;
            }
    return 0;
}

ze_result_t zesInit(uint32_t flags) {
    load();
    if (flags != 0) return ZE_RESULT_ERROR_INVALID_ARGUMENT;
    if (st.init_status) return st.init_status;
    initialised = 1;
    return ZE_RESULT_SUCCESS;
}

ze_result_t zesDriverGet(uint32_t *count, void **drivers) {
    if (!initialised) return ZE_RESULT_ERROR_UNINITIALIZED;
    if (!count) return ZE_RESULT_ERROR_INVALID_ARGUMENT;
    if (*count == 0 || !drivers) {
        *count = 1;
        return ZE_RESULT_SUCCESS;
    }
    drivers[0] = &DRIVER;
    *count = 1;
    return ZE_RESULT_SUCCESS;
}

ze_result_t zesDeviceGet(void *driver, uint32_t *count, void **devs) {
    if (!initialised) return ZE_RESULT_ERROR_UNINITIALIZED;
    if (driver != &DRIVER) return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    if (!count) return ZE_RESULT_ERROR_INVALID_ARGUMENT;
    load();
    if (*count == 0 || !devs) {
        *count = st.count;
        return ZE_RESULT_SUCCESS;
    }
    uint32_t n = *count < st.count ? *count : st.count;
    for (uint32_t i = 0; i < n; i++) devs[i] = &DEVS[i];
    *count = n;
    return ZE_RESULT_SUCCESS;
}

ze_result_t zesDeviceGetProperties(void *dev, zes_device_properties_t *p) {
    if (!initialised) return ZE_RESULT_ERROR_UNINITIALIZED;
    load();
    int i = dev_index(dev);
    if (i < 0) return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    if (!p || p->stype != 0x1) return ZE_RESULT_ERROR_INVALID_ARGUMENT;
    memset(&p->core.type, 0, sizeof *p - offsetof(zes_device_properties_t, core.type));
    p->core.vendorId = 0x8086;
    snprintf(p->core.name, sizeof p->core.name, "Intel(R) Graphics [0x0bd5]");
    for (int b = 0; b < 16; b++) p->core.uuid[b] = (uint8_t)(0x10 * i + b);
    p->numSubdevices = (uint32_t)st.d[i].tiles;
    snprintf(p->modelName, sizeof p->modelName, "%s", st.d[i].name);
    snprintf(p->vendorName, sizeof p->vendorName, "Intel(R) Corporation");
    return ZE_RESULT_SUCCESS;
}

ze_result_t zesDeviceEnumPowerDomains(void *dev, uint32_t *count, void **pwr) {
    if (!initialised) return ZE_RESULT_ERROR_UNINITIALIZED;
    load();
    int i = dev_index(dev);
    if (i < 0) return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    if (!count) return ZE_RESULT_ERROR_INVALID_ARGUMENT;
    uint32_t total = (uint32_t)(st.d[i].card + st.d[i].tiles);
    if (*count == 0 || !pwr) {
        *count = total;
        return ZE_RESULT_SUCCESS;
    }
    uint32_t n = *count < total ? *count : total;
    for (uint32_t p = 0; p < n; p++) pwr[p] = &PWR[i][p];
    *count = n;
    return ZE_RESULT_SUCCESS;
}

ze_result_t zesPowerGetProperties(void *h, zes_power_properties_t *p) {
    if (!initialised) return ZE_RESULT_ERROR_UNINITIALIZED;
    load();
    int i, d;
    if (!pwr_index(h, &i, &d)) return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    if (!p || p->stype != 0xd) return ZE_RESULT_ERROR_INVALID_ARGUMENT;
    int tile = !(st.d[i].card && d == 0);
    p->onSubdevice = (ze_bool_t)tile;
    p->subdeviceId = tile ? (uint32_t)(d - st.d[i].card) : 0;
    p->canControl = 0;
    p->isEnergyThresholdSupported = 0;
    p->defaultLimit = -1;
    p->minLimit = -1;
    p->maxLimit = st.d[i].maxmw ? st.d[i].maxmw : -1;
    return ZE_RESULT_SUCCESS;
}

ze_result_t zesPowerGetEnergyCounter(void *h, zes_power_energy_counter_t *c) {
    if (!initialised) return ZE_RESULT_ERROR_UNINITIALIZED;
    load();
    int i, d;
    if (!pwr_index(h, &i, &d)) return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    if (!c) return ZE_RESULT_ERROR_INVALID_ARGUMENT;
    if (i == 0 && d == 0) {
        /* count the reads of device 0's first domain in `<state>.reads` (see the CLI test) */
        const char *path = getenv("FAKE_ZE_STATE");
        char p[1024];
        long n = 0;
        snprintf(p, sizeof p, "%s.reads", path ? path : "/nonexistent");
        FILE *f = path ? fopen(p, "r") : NULL;
        if (f) {
            if (fscanf(f, "%ld", &n) != 1) n = 0;
            fclose(f);
        }
        f = path ? fopen(p, "w") : NULL;
        if (f) {
            fprintf(f, "%ld\n", n + 1);
            fclose(f);
        }
    }
    if (st.d[i].fail) return st.d[i].fail;
    c->energy = st.d[i].e[d];
    c->timestamp = 1;
    return ZE_RESULT_SUCCESS;
}
