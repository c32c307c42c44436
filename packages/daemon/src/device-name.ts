/**
 * Device names: what a user calls this machine ("laptop", "kitchen Pi"). The daemon announces its
 * name in cluster state (`node.setMeta('name', …)`), so every peer's `/status` lists it by name.
 * Names set through the API are checked; names heard from peers are only cleaned up, since a
 * peer can send anything.
 */
import type { PeerInfo } from '@hearsay/core'
import { DEVICE_NAME_MAX, DEVICE_NAME_META } from './constants.js'

export class DeviceNameError extends Error {
  static readonly code = 'DeviceNameError'
  override readonly name = 'DeviceNameError'
}

// C0 and C1 controls, line and paragraph separators, bidi overrides and isolates
// eslint-disable-next-line no-control-regex
const UNPRINTABLE = '[\\u0000-\\u001f\\u007f-\\u009f\\u2028\\u2029\\u202a-\\u202e\\u2066-\\u2069]'
const HAS_UNPRINTABLE = new RegExp(UNPRINTABLE)
const ALL_UNPRINTABLE = new RegExp(UNPRINTABLE, 'g')

/** A device name as given by the user: 1 to 64 printable characters once trimmed. */
export function checkDeviceName (value: unknown): string {
  if (typeof value !== 'string') throw new DeviceNameError(`a device name is a JSON string, such as "laptop"; got ${typeof value}`)
  const name = value.trim()
  if (name === '') throw new DeviceNameError('the device name is empty')
  if ([...name].length > DEVICE_NAME_MAX) throw new DeviceNameError(`the device name is longer than ${DEVICE_NAME_MAX} characters`)
  if (HAS_UNPRINTABLE.test(name)) throw new DeviceNameError('the device name contains control or direction characters')
  return name
}

/** The name a peer announces, made safe to show: printable, trimmed, at most 64 characters; undefined when none. */
export function peerName (meta: Record<string, string> | undefined, key: string): string | undefined {
  const raw = meta?.[key]
  if (typeof raw !== 'string') return undefined
  const name = [...raw.replace(ALL_UNPRINTABLE, '').trim()].slice(0, DEVICE_NAME_MAX).join('')
  return name === '' ? undefined : name
}

/** The name to show for a peer: its roster name, else the one it announces, made safe as above. */
export function displayName (p: Pick<PeerInfo, 'name' | 'meta'>): string | undefined {
  return peerName(p.name === undefined ? p.meta : { name: p.name }, DEVICE_NAME_META)
}
