#!/usr/bin/env bash
# Puts a Linux host into the state pinion's latency figures assume, as far as it can be done at
# run time (needs root). Isolating cores needs kernel boot parameters, which this script only
# prints. Every change is echoed; `scripts/host-check.sh` shows the result.
#
# Boot parameters for a dedicated host with cores 2-5 for the four stages, for example:
#   isolcpus=2-5 nohz_full=2-5 rcu_nocbs=2-5 irqaffinity=0-1 intel_pstate=disable
set -eu
if [ "$(id -u)" -ne 0 ]; then
    echo "host-tune.sh needs root" >&2
    exit 1
fi

for g in /sys/devices/system/cpu/cpu*/cpufreq/scaling_governor; do
    [ -w "$g" ] && echo performance > "$g" && echo "governor performance: $g"
done
if [ -w /sys/devices/system/cpu/intel_pstate/no_turbo ]; then
    echo 1 > /sys/devices/system/cpu/intel_pstate/no_turbo && echo "turbo off"
elif [ -w /sys/devices/system/cpu/cpufreq/boost ]; then
    echo 0 > /sys/devices/system/cpu/cpufreq/boost && echo "boost off"
fi
if [ -w /proc/sys/kernel/randomize_va_space ]; then
    echo 0 > /proc/sys/kernel/randomize_va_space && echo "ASLR off"
fi
if [ -w /sys/kernel/mm/transparent_hugepage/enabled ]; then
    echo never > /sys/kernel/mm/transparent_hugepage/enabled && echo "transparent huge pages off"
fi
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet irqbalance 2>/dev/null; then
    systemctl stop irqbalance && echo "irqbalance stopped"
fi
echo "core isolation needs boot parameters; see the comment at the top of this script."
