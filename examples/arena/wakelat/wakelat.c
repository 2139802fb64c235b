#include "wakelat.h"

#include <time.h>

void wl_run(int64_t *late, int n, int64_t period) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	for (int i = 0; i < n; i++) {
		t.tv_nsec += period;
		while (t.tv_nsec >= 1000000000) {
			t.tv_nsec -= 1000000000;
			t.tv_sec++;
		}
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL) != 0) {
		}
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		late[i] = (int64_t)(now.tv_sec - t.tv_sec) * 1000000000 + (now.tv_nsec - t.tv_nsec);
	}
}
