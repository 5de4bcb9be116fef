// oauth4webapi (panva) against a running tokengate: RFC 8414 discovery, RFC 7591 dynamic
// client registration with an initial access token, then the client credentials grant with
// the registered secret. Prints one JSON line; exits 1 with the error's name on failure.
// Usage: node register.mjs ISSUER [INITIAL_ACCESS_TOKEN]
import * as oauth from 'oauth4webapi'

const [issuerUrl, initialAccessToken] = process.argv.slice(2)
const issuer = new URL(issuerUrl)
const insecure = { [oauth.allowInsecureRequests]: true } // plain HTTP on loopback only

try {
  const discovery = await oauth.discoveryRequest(issuer, { ...insecure, algorithm: 'oauth2' })
  const as = await oauth.processDiscoveryResponse(issuer, discovery)
  const metadata = {
    client_name: 'oauth4webapi',
    scope: 'read',
    grant_types: ['client_credentials'],
    token_endpoint_auth_method: 'client_secret_basic',
    tokengate_token_ttl: 120,
  }
  const options = initialAccessToken ? { ...insecure, initialAccessToken } : insecure
  const response = await oauth.dynamicClientRegistrationRequest(as, metadata, options)
  const client = await oauth.processDynamicClientRegistrationResponse(response)
  const auth = oauth.ClientSecretBasic(client.client_secret)
  const params = new URLSearchParams({ scope: 'read' })
  const grant = await oauth.clientCredentialsGrantRequest(as, client, auth, params, insecure)
  const token = await oauth.processClientCredentialsResponse(as, client, grant)
  console.log(JSON.stringify({
    client_id: client.client_id,
    registration_client_uri: client.registration_client_uri,
    registration_access_token: client.registration_access_token,
    token_type: token.token_type,
    expires_in: token.expires_in,
    scope: token.scope,
  }))
} catch (error) {
  console.log(JSON.stringify({ error: error.name, status: error.status ?? error.response?.status ?? null, code: error.error ?? null }))
  process.exit(1)
}
