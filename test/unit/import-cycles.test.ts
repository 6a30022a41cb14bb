/**
 * No import cycles in the client's sources: a module never imports back, directly or through
 * others, from a module that imports it (STYLE.md, habit 15). Type-only imports count: a type that
 * goes round in circles is a contract that lives in the wrong place. src/server is checked once its
 * own layout lands (issue 8).
 */
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'
import { describe, expect, it } from 'vitest'

const root = fileURLToPath(new URL('../../', import.meta.url))
const src = join(root, 'src')
const EXCLUDED = [join(src, 'server')]

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name)
    if (EXCLUDED.includes(path)) return []
    if (entry.isDirectory()) return sources(path)
    return /\.tsx?$/.test(entry.name) ? [path] : []
  })
}

/** The relative imports of each file (static, dynamic and type-only), resolved to source files. */
function importGraph(files: string[]): Map<string, string[]> {
  const known = new Set(files)
  return new Map(
    files.map((file) => {
      const { importedFiles } = ts.preProcessFile(readFileSync(file, 'utf8'), true, true)
      const targets = importedFiles
        .map(({ fileName }) => fileName)
        .filter((name) => name.startsWith('.'))
        .map((name) => resolve(dirname(file), name).replace(/\.js$/, '.ts'))
        .filter((target) => known.has(target))
      return [file, targets]
    }),
  )
}

/** Every cycle, each once, as a list of repo-relative paths. */
function cycles(graph: Map<string, string[]>): string[][] {
  const found: string[][] = []
  const seen = new Set<string>()
  const visit = (file: string, path: string[]): void => {
    const at = path.indexOf(file)
    if (at >= 0) {
      const cycle = path.slice(at)
      const key = [...cycle].sort().join()
      if (!seen.has(key)) {
        seen.add(key)
        found.push(cycle.map((each) => relative(root, each)))
      }
      return
    }
    for (const next of graph.get(file) ?? []) visit(next, [...path, file])
  }
  for (const file of graph.keys()) visit(file, [])
  return found
}

describe('import graph', () => {
  it('finds a cycle when there is one (the check itself)', () => {
    const graph = new Map([
      ['a', ['b']],
      ['b', ['c']],
      ['c', ['a']],
      ['d', ['a']],
    ])
    expect(cycles(graph).map((cycle) => cycle.length)).toEqual([3])
  })

  it('has no cycles in the client, transports, protocol and react sources', () => {
    const files = sources(src)
    expect(files.some((file) => file.endsWith('client/client.ts'))).toBe(true)
    expect(cycles(importGraph(files)).map((cycle) => cycle.join(' → '))).toEqual([])
  })
})
