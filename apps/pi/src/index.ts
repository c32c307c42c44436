export { startAgent, INTERVAL_MS, MIN_INTERVAL_MS, HISTORY } from './agent.js'
export type { Agent, AgentOptions, AgentSettings } from './agent.js'
export { read, readTemperature, simulatedTemperature, THERMAL_ZONE } from './telemetry.js'
export type { Reading } from './telemetry.js'
