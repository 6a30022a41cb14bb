/**
 * The Standard Schema v1 interface (standardschema.dev), written out here so that pushline depends
 * on no validation library: zod 4, valibot and arktype schemas all implement it, and an app's
 * bundle holds its validator only if the app imports one.
 */
export interface StandardSchemaV1<Input = unknown, Output = Input> {
  readonly '~standard': StandardSchemaV1.Props<Input, Output>
}

export declare namespace StandardSchemaV1 {
  interface Props<Input = unknown, Output = Input> {
    readonly version: 1
    /** The library that made the schema (`zod`, `valibot`, …). */
    readonly vendor: string
    /** Checks `value`; synchronous for most schemas, a promise for schemas with async refinements. */
    readonly validate: (value: unknown) => Result<Output> | Promise<Result<Output>>
    /** Only for type inference; never set at runtime. */
    readonly types?: Types<Input, Output> | undefined
  }
  type Result<Output> = SuccessResult<Output> | FailureResult
  interface SuccessResult<Output> {
    readonly value: Output
    readonly issues?: undefined
  }
  interface FailureResult {
    readonly issues: ReadonlyArray<Issue>
  }
  interface Issue {
    readonly message: string
    readonly path?: ReadonlyArray<PropertyKey | PathSegment> | undefined
  }
  interface PathSegment {
    readonly key: PropertyKey
  }
  interface Types<Input = unknown, Output = Input> {
    readonly input: Input
    readonly output: Output
  }
}

/** The type a schema accepts. */
export type InferInput<Schema extends StandardSchemaV1> = NonNullable<Schema['~standard']['types']>['input']

/** The type a schema produces: what a validated message's `data` is. */
export type InferOutput<Schema extends StandardSchemaV1> = NonNullable<Schema['~standard']['types']>['output']

/**
 * Validates `value` with `schema`, a validator that throws or rejects counted as a failure (the
 * server answers it like any invalid value and never lets it escape). The client calls the
 * validator directly: a schema that breaks the Standard Schema contract by throwing surfaces there
 * as a throwing listener would.
 */
export async function validateWith<Output>(schema: StandardSchemaV1<unknown, Output>, value: unknown): Promise<StandardSchemaV1.Result<Output>> {
  try {
    return await schema['~standard'].validate(value)
  } catch (cause) {
    return { issues: [{ message: `the validator failed: ${String(cause)}` }] }
  }
}

/**
 * The issues of a failed validation as one line for an error message: each issue's path and
 * message, the first few only (a client's data can be large, and so can the list of what is wrong).
 */
export function describeIssues(issues: ReadonlyArray<StandardSchemaV1.Issue>, max = 3): string {
  const described = issues.slice(0, max).map(({ message, path }) => {
    const keys = path?.map((segment) => String(typeof segment === 'object' ? segment.key : segment))
    return keys?.length ? `${keys.join('.')}: ${message}` : message
  })
  if (issues.length > max) described.push(`and ${issues.length - max} more`)
  return described.join('; ')
}
