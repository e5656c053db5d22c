/**
 * @internal
 * A claim's string values: the claim itself if it is a string, the strings of a list (any other member left out), else
 * none (`aud`, `cognito:groups`, a groups claim).
 */
export const strings = (value: unknown): ReadonlyArray<string> =>
  typeof value === "string"
    ? [value]
    : Array.isArray(value)
    ? value.filter((item): item is string => typeof item === "string")
    : []
