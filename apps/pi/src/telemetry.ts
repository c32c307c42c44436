/**
 * Readings of this machine: CPU temperature (from the kernel's thermal zone when present,
 * simulated elsewhere), load and memory.
 */
import { readFile } from 'node:fs/promises'
import { cpus, freemem, loadavg, totalmem, uptime } from 'node:os'

/** Where Linux (and Raspberry Pi OS) reports the SoC temperature, in millidegrees Celsius. */
export const THERMAL_ZONE = '/sys/class/thermal/thermal_zone0/temp'

export interface Reading {
  /** ms since epoch */
  at: number
  cpuTempC: number
  /** The temperature is simulated: this machine has no thermal zone. */
  simulatedTemp: boolean
  load1: number
  load5: number
  cpus: number
  memUsedPct: number
  memTotalMb: number
  uptimeS: number
}

export async function readTemperature (file = THERMAL_ZONE): Promise<number | undefined> {
  try {
    const milli = Number((await readFile(file, 'utf8')).trim())
    return Number.isFinite(milli) ? Math.round(milli / 100) / 10 : undefined
  } catch {
    return undefined
  }
}

/** A plausible SoC temperature that drifts with load: 45 °C idle, +8 °C per busy core. */
export function simulatedTemperature (load1: number, cores: number, now: number): number {
  const busy = Math.min(1, load1 / Math.max(1, cores))
  const wobble = Math.sin(now / 60_000) * 1.5
  return Math.round((45 + busy * 8 * Math.min(4, cores) + wobble) * 10) / 10
}

export async function read (thermalZone = THERMAL_ZONE): Promise<Reading> {
  const now = Date.now()
  const [load1 = 0, load5 = 0] = loadavg()
  const cores = cpus().length
  const real = await readTemperature(thermalZone)
  const total = totalmem()
  return {
    at: now,
    cpuTempC: real ?? simulatedTemperature(load1, cores, now),
    simulatedTemp: real === undefined,
    load1: Math.round(load1 * 100) / 100,
    load5: Math.round(load5 * 100) / 100,
    cpus: cores,
    memUsedPct: Math.round(1000 * (1 - freemem() / total)) / 10,
    memTotalMb: Math.round(total / 1024 / 1024),
    uptimeS: Math.round(uptime())
  }
}
