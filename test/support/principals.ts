/** Test support: a Principal as a validator stub answers it, without a token behind it. */
import { Principal } from "../../src/Principal.js"

/** Alice, in group `staff` with scope `orders:read`, her token good for an hour from when the module loads. */
export const alice = new Principal({
  id: "alice",
  name: "Alice",
  email: undefined,
  groups: ["staff"],
  scopes: ["orders:read"],
  tokenType: "access",
  clientId: undefined,
  isMachine: false,
  issuer: "https://idp.example",
  expiresAt: new Date(Date.now() + 3600_000),
  claims: {}
})
