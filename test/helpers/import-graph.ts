/**
 * The import graph of src/ as TypeScript sees it (`ts.preProcessFile`: imports, `import type`,
 * re-exports, dynamic `import()`), and the cycles in it, for test/cycles.test.ts.
 *
 * Type-only imports count: a module that imports types back from the module that wires it together
 * is the cycle the house rules forbid, even though the JavaScript has no edge there.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve, sep } from 'node:path'
import ts from 'typescript'

/** Module → the modules it imports, by path relative to the graph's root directory. */
export type ImportGraph = ReadonlyMap<string, readonly string[]>

const SOURCE_EXTENSIONS = ['.ts', '.tsx']

function sourceFiles(directory: string): string[] {
  return readdirSync(directory, { withFileTypes: true }).flatMap((entry) => {
    const path = join(directory, entry.name)
    if (entry.isDirectory()) return sourceFiles(path)
    return SOURCE_EXTENSIONS.some((extension) => entry.name.endsWith(extension)) && !entry.name.endsWith('.d.ts') ? [path] : []
  })
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile()
  } catch {
    return false
  }
}

/** Resolves a relative specifier as NodeNext does for our sources: `./x.js` is ./x.ts, `./dir` its index. */
function resolveSpecifier(fromFile: string, specifier: string): string | undefined {
  const target = resolve(dirname(fromFile), specifier)
  const stem = target.replace(/\.(js|jsx|mjs|cjs)$/, '')
  const candidates = [
    target,
    ...SOURCE_EXTENSIONS.map((extension) => stem + extension),
    ...SOURCE_EXTENSIONS.map((extension) => join(target, `index${extension}`)),
  ]
  return candidates.find((candidate) => SOURCE_EXTENSIONS.some((extension) => candidate.endsWith(extension)) && isFile(candidate))
}

/** The graph of every .ts/.tsx module below `directory`; imports leaving it (packages, ../) are left out. */
export function readImportGraph(directory: string): ImportGraph {
  const graph = new Map<string, string[]>()
  const name = (file: string) => relative(directory, file).split(sep).join('/')
  for (const file of sourceFiles(directory).sort()) {
    const { importedFiles } = ts.preProcessFile(readFileSync(file, 'utf8'), true, true)
    const imports = new Set<string>()
    for (const { fileName } of importedFiles) {
      if (!fileName.startsWith('.')) continue
      const target = resolveSpecifier(file, fileName)
      if (target === undefined) throw new Error(`${name(file)}: cannot resolve '${fileName}'`)
      if (!relative(directory, target).startsWith('..')) imports.add(name(target))
    }
    graph.set(name(file), [...imports].sort())
  }
  return graph
}

/** Strongly connected components with more than one module, or a module importing itself (Tarjan). */
export function stronglyConnectedComponents(graph: ImportGraph): string[][] {
  let nextIndex = 0
  const index = new Map<string, number>()
  const lowLink = new Map<string, number>()
  const stack: string[] = []
  const onStack = new Set<string>()
  const components: string[][] = []

  // Recursive: src/ is a few dozen modules deep at most.
  const visit = (module: string) => {
    index.set(module, nextIndex)
    lowLink.set(module, nextIndex)
    nextIndex++
    stack.push(module)
    onStack.add(module)
    for (const target of graph.get(module) ?? []) {
      if (!index.has(target)) {
        visit(target)
        lowLink.set(module, Math.min(lowLink.get(module)!, lowLink.get(target)!))
      } else if (onStack.has(target)) {
        lowLink.set(module, Math.min(lowLink.get(module)!, index.get(target)!))
      }
    }
    if (lowLink.get(module) === index.get(module)) {
      const component: string[] = []
      let member: string | undefined
      do {
        member = stack.pop()!
        onStack.delete(member)
        component.push(member)
      } while (member !== module)
      if (component.length > 1 || (graph.get(module) ?? []).includes(module)) components.push(component.sort())
    }
  }
  for (const module of graph.keys()) if (!index.has(module)) visit(module)
  return components
}

/** The shortest path from `from` to `to` using only modules in `within`, both ends included. */
function shortestPath(graph: ImportGraph, from: string, to: string, within: ReadonlySet<string>): string[] | undefined {
  const previous = new Map<string, string | undefined>([[from, undefined]])
  const queue = [from]
  for (let head = 0; head < queue.length; head++) {
    const module = queue[head]!
    if (module === to) {
      const path: string[] = []
      for (let step: string | undefined = to; step !== undefined; step = previous.get(step)) path.unshift(step)
      return path
    }
    for (const target of graph.get(module) ?? []) {
      if (within.has(target) && !previous.has(target)) {
        previous.set(target, module)
        queue.push(target)
      }
    }
  }
  return undefined
}

/**
 * The cycles of `graph`, each as a path that ends where it starts (`['a', 'b', 'a']`): for every
 * import inside a strongly connected component, the shortest cycle through it, without repeats.
 * Every import that takes part in a cycle appears in one, so cutting the listed edges is enough.
 */
export function findCycles(graph: ImportGraph): string[][] {
  const cycles = new Map<string, string[]>()
  for (const component of stronglyConnectedComponents(graph)) {
    const members = new Set(component)
    for (const from of component) {
      for (const to of graph.get(from) ?? []) {
        if (!members.has(to)) continue
        const back = shortestPath(graph, to, from, members)
        if (!back) continue
        const loop = [from, ...back] // from -> to -> ... -> from
        // The same cycle found from another of its edges: key it by its rotation from its least module.
        const ring = loop.slice(0, -1)
        const start = ring.indexOf([...ring].sort()[0]!)
        const canonical = [...ring.slice(start), ...ring.slice(0, start)]
        const key = canonical.join(' -> ')
        if (!cycles.has(key)) cycles.set(key, [...canonical, canonical[0]!])
      }
    }
  }
  return [...cycles.values()].sort((a, b) => a.length - b.length || a.join().localeCompare(b.join()))
}
