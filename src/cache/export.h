// SPDX-License-Identifier: MIT
// cache/export: the statistics area read by tools/slabinfo (include/slub/stats.h). All of it
// runs on the service thread, except export_close (at exit) and export_forget (fork child).
#pragma once

#include "cache/cache.h"

namespace slub {

void export_start();    // creates /dev/shm/slub.<pid> (unless SLUB_EXPORT=0) and publishes
void export_publish();  // writes a snapshot of every cache under the seqlock
// Waits up to `ms` for a command from a reader; true if one is pending.
bool export_wait(unsigned ms);
void export_serve();   // carries out the pending command, publishes, answers
void export_close();   // at exit: removes the area
void export_forget();  // fork child: drops the parent's mapping

}  // namespace slub
