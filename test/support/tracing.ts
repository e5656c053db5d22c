/** Test support: a tracer that keeps the spans it makes. */
import * as Context from "effect/Context"
import * as DefaultServices from "effect/DefaultServices"
import * as Tracer from "effect/Tracer"

/** A tracer of our own (so not Effect's built-in one) that keeps every span it makes, built by the built-in one. */
export const recording = () => {
  const builtIn = Context.get(DefaultServices.liveServices, Tracer.Tracer)
  const spans: Array<Tracer.Span> = []
  const tracer = Tracer.make({
    span: (...args) => {
      const span = builtIn.span(...args)
      spans.push(span)
      return span
    },
    context: builtIn.context
  })
  const named = (name: string) => spans.filter((span) => span.name === name)
  return { tracer, spans, named }
}
