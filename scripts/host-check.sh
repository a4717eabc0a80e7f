#!/usr/bin/env bash
# Prints the host state that decides whether latency numbers mean anything. Changes nothing.
# Run it before benchmarks and keep its output beside the figures.
set -u

read_or() {
    local v=""
    [ -r "$1" ] && v=$(tr -d '\n' < "$1")
    printf '%s' "${v:-$2}"
}

echo "host:            $(uname -srm)"
echo "cpus online:     $(read_or /sys/devices/system/cpu/online '?') ($(nproc) usable by this process)"
echo "isolated cpus:   $(read_or /sys/devices/system/cpu/isolated '(none)')"
echo "nohz_full cpus:  $(read_or /sys/devices/system/cpu/nohz_full '(none)')"
echo "kernel cmdline:  $(read_or /proc/cmdline '?')"

govs=$(cat /sys/devices/system/cpu/cpu*/cpufreq/scaling_governor 2>/dev/null | sort | uniq -c | tr -s ' ' | tr '\n' ';')
echo "governor:        ${govs:-(no cpufreq: virtual machine or fixed frequency)}"
if [ -r /sys/devices/system/cpu/intel_pstate/no_turbo ]; then
    echo "turbo disabled:  $(cat /sys/devices/system/cpu/intel_pstate/no_turbo) (1 = off, wanted)"
elif [ -r /sys/devices/system/cpu/cpufreq/boost ]; then
    echo "boost:           $(cat /sys/devices/system/cpu/cpufreq/boost) (0 = off, wanted)"
else
    echo "turbo/boost:     (not exposed)"
fi
echo "smt active:      $(read_or /sys/devices/system/cpu/smt/active '?') (0 = off, wanted)"
echo "aslr:            $(read_or /proc/sys/kernel/randomize_va_space '?') (0 = off, wanted for repeatable runs)"
echo "transparent hp:  $(read_or /sys/kernel/mm/transparent_hugepage/enabled '?')"
if pgrep -x irqbalance >/dev/null 2>&1; then
    echo "irqbalance:      running (stop it and steer IRQs off the isolated cores)"
else
    echo "irqbalance:      not running"
fi
echo "load average:    $(read_or /proc/loadavg '?')"
