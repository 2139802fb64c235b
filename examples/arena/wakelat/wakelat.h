#include <stdint.h>

// wl_run sleeps to n absolute deadlines period ns apart with
// clock_nanosleep and writes how late each wake-up was, in ns, to late.
void wl_run(int64_t *late, int n, int64_t period);
