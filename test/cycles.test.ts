/**
 * No import cycles in src/ (house style 15): a module never imports back, not even types, from the
 * module that wires it together. The graph is TypeScript's view of the imports
 * (test/helpers/import-graph.ts); a failure lists each cycle as a path `a -> b -> a`, one per import
 * that takes part in a cycle, so each line names an import to move or cut.
 */
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { findCycles, readImportGraph, stronglyConnectedComponents, type ImportGraph } from './helpers/import-graph.js'

const src = fileURLToPath(new URL('../src/', import.meta.url))

const graphOf = (edges: Record<string, string[]>): ImportGraph => new Map(Object.entries(edges))

describe('the cycle finder', () => {
  it('finds none in a graph without cycles, diamonds included', () => {
    const graph = graphOf({ 'index.ts': ['a.ts', 'b.ts'], 'a.ts': ['types.ts'], 'b.ts': ['types.ts', 'a.ts'], 'types.ts': [] })
    expect(stronglyConnectedComponents(graph)).toEqual([])
    expect(findCycles(graph)).toEqual([])
  })

  it('finds a cycle of two, once, as a path back to its start', () => {
    const graph = graphOf({ 'server.ts': ['hub.ts', 'types.ts'], 'hub.ts': ['server.ts'], 'types.ts': [] })
    expect(findCycles(graph)).toEqual([['hub.ts', 'server.ts', 'hub.ts']])
  })

  it('finds a module that imports itself', () => {
    expect(findCycles(graphOf({ 'a.ts': ['a.ts'] }))).toEqual([['a.ts', 'a.ts']])
  })

  it('lists a shortest cycle through every import of a tangle, and separate tangles apart', () => {
    const graph = graphOf({
      'a.ts': ['b.ts'],
      'b.ts': ['c.ts', 'a.ts'],
      'c.ts': ['a.ts'],
      'x.ts': ['y.ts'],
      'y.ts': ['x.ts', 'a.ts'],
    })
    expect(stronglyConnectedComponents(graph).sort()).toEqual([
      ['a.ts', 'b.ts', 'c.ts'],
      ['x.ts', 'y.ts'],
    ])
    expect(findCycles(graph)).toEqual([
      ['a.ts', 'b.ts', 'a.ts'],
      ['x.ts', 'y.ts', 'x.ts'],
      ['a.ts', 'b.ts', 'c.ts', 'a.ts'],
    ])
  })
})

describe('src/', () => {
  it('reads the imports of every module, type-only ones and re-exports included', () => {
    const graph = readImportGraph(src)
    expect(graph.get('index.ts')).toEqual(expect.arrayContaining(['core.ts', 'client/push-client.ts', 'client/options.ts']))
    expect(graph.size).toBeGreaterThan(20)
  })

  it('has no import cycles', () => {
    const cycles = findCycles(readImportGraph(src))
    const report = cycles.map((cycle) => `  ${cycle.join(' -> ')}`).join('\n')
    expect(cycles.length, `${cycles.length} import cycles in src/:\n${report}\n`).toBe(0)
  })
})
