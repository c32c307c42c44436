/**
 * Vitest global setup: every test run gets a temporary directory of its own (TMPDIR, inherited
 * by the test workers and the processes they start), so runs on the same machine never see each
 * other's files. At the end, a test directory (`hs-*`, `hearsay-*`) still in it means a test did
 * not clean up after itself: the run fails and names them. The run's directory is removed either way.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** Names of the temporary directories tests create; each test removes its own. */
const TEST_DIR = /^(hs|hearsay)-/

export default function setup (): () => void {
  const outer = tmpdir()
  const run = mkdtempSync(join(outer, 'hs-test-run-'))
  process.env.TMPDIR = run
  return () => {
    process.env.TMPDIR = outer
    let left: string[] = []
    try {
      left = readdirSync(run).filter(name => TEST_DIR.test(name))
    } finally {
      rmSync(run, { recursive: true, force: true })
    }
    if (left.length > 0) {
      // vitest reports an error thrown here but would still exit 0
      process.exitCode = 1
      throw new Error(`tests left ${left.length} temporary director${left.length === 1 ? 'y' : 'ies'} behind: ${left.sort().join(', ')}. Remove each in afterEach/afterAll or finally (stop its processes first).`)
    }
  }
}
