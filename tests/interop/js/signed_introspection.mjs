// oauth4webapi (panva) as a resource server against a running tokengate: RFC 8414 discovery,
// then RFC 9701 introspection with `requestJwtResponse: true`; `processIntrospectionResponse`
// checks typ, alg, iss, aud and iat, and `validateApplicationLevelSignature` verifies the JWS
// with the issuer's `jwks_uri`. Prints one JSON line; exits 1 with the error's name on failure.
// Usage: node signed_introspection.mjs ISSUER CLIENT_ID CLIENT_SECRET TOKEN
import * as oauth from 'oauth4webapi'

const [issuerUrl, clientId, clientSecret, token] = process.argv.slice(2)
const issuer = new URL(issuerUrl)
const insecure = { [oauth.allowInsecureRequests]: true } // plain HTTP on loopback only

try {
  const discovery = await oauth.discoveryRequest(issuer, { ...insecure, algorithm: 'oauth2' })
  const as = await oauth.processDiscoveryResponse(issuer, discovery)
  const client = { client_id: clientId }
  const auth = oauth.ClientSecretBasic(clientSecret)
  const response = await oauth.introspectionRequest(
    as, client, auth, token, { ...insecure, requestJwtResponse: true })
  const contentType = response.headers.get('content-type')
  const result = await oauth.processIntrospectionResponse(as, client, response)
  await oauth.validateApplicationLevelSignature(as, response, insecure)
  console.log(JSON.stringify({ content_type: contentType, active: result.active, scope: result.scope ?? null }))
} catch (error) {
  console.log(JSON.stringify({ error: error.name, code: error.code ?? null, message: error.message }))
  process.exit(1)
}
