// The Fluid token service on Azure Functions Flex Consumption: the function app (custom handler
// runtime, system-assigned identity), its storage, Application Insights, and a Key Vault (RBAC)
// whose secrets the app's identity may read. Optionally App Service Authentication with Entra ID
// (AUTH_MODE=easyauth) and an Azure Communication Services resource reached with the app's
// identity (AcsTokenFunction). Needs Bicep 0.33 or newer (fail()).
//
// Safe whatever the plan enforces: authMode defaults to entra (the handler verifies every bearer
// itself), and CORS defaults to the handler's own (corsMode handler), since Flex Consumption has
// listed Easy Auth and platform CORS as unsupported. Run deploy/verify after every deployment.
//
// Keyless: the app reaches storage (AzureWebJobsStorage__accountName), Key Vault, ACS and
// Application Insights with its managed identity; the storage account refuses shared-key access. Every siteConfig property and
// app setting here is one Flex Consumption accepts (no ftpsState, FUNCTIONS_WORKER_RUNTIME,
// WEBSITE_RUN_FROM_PACKAGE, WEBSITE_CONTENT*, alwaysOn, linuxFxVersion, …): tests/api/deploy.rs
// checks that statically, since the Bicep CLI cannot run in the test environment.

@description('Prefix of every resource name (letters and digits, 3-11 characters).')
@minLength(3)
@maxLength(11)
param namePrefix string

param location string = resourceGroup().location

@description('Caller authentication: entra (access tokens, verified by the handler on any plan), easyauth (App Service Authentication: check it with deploy/verify), or none (development only).')
@allowed(['easyauth', 'entra', 'none'])
param authMode string = 'entra'

@description('Entra ID tenant of the users (easyauth and entra).')
param entraTenantId string = tenant().tenantId

@description('Client id of the app registration that signs users in (easyauth) or of the token service API (entra). Required unless authMode is none.')
param entraClientId string = ''

@description('entra: accepted audiences, comma-separated (default: api://<entraClientId> and the client id).')
param entraAudience string = ''

@description('entra: required delegated scope or app role, e.g. Token.Issue.')
param entraRequiredScope string = ''

@description('Client application ids allowed to call (easyauth: Easy Auth defaultAuthorizationPolicy.allowedApplications; entra: ENTRA_ALLOWED_CLIENT_APPS, matched against azp/appid). Empty: any client application of the tenant.')
param allowedClientApplications array = []

@description('Browser origins allowed to call the functions, e.g. https://app.contoso.com.')
param allowedOrigins array = []

@description('Who answers CORS for allowedOrigins: handler (CORS_ALLOWED_ORIGINS; works on any plan) or platform (the Function App CORS setting). Exactly one: both would send two Access-Control-Allow-Origin headers, which browsers reject.')
@allowed(['handler', 'platform'])
param corsMode string = 'handler'

@description('CORS: allow credentials (cookies) from allowedOrigins; needed when a browser app sends the Easy Auth session cookie cross-origin.')
param corsSupportCredentials bool = false

@description('Azure Fluid Relay tenant ids tokens may be issued for, comma-separated (empty: any with a key).')
param allowedTenants string = ''

@description('Tenant ids whose keys are read at startup, comma-separated.')
param preloadTenants string = ''

@description('Longest token lifetime in seconds (at most 3600).')
@minValue(1)
@maxValue(3600)
param maxTokenLifetimeSeconds int = 3600

@description('Changes the Key Vault name. A deleted vault is kept (soft delete, purge protection) for 90 days under its name: set a new suffix to redeploy into a recreated resource group before then.')
param vaultNameSuffix string = ''

@description('Name of an Azure Communication Services resource in this resource group; the app reaches it with its managed identity (Contributor on the resource). Empty: no ACS function.')
param acsResourceName string = ''

@description('Instead of acsResourceName: the name of the Key Vault secret holding an ACS connection string (access key).')
param acsConnectionStringSecretName string = ''

@description('Who may open a container: open (any signed-in caller, any container) or members (its creator and the people they add; memberships in Table Storage). members needs authMode easyauth or entra.')
@allowed(['open', 'members'])
param documentAccess string = 'open'

@description('Requests per second per signed-in caller, per instance (CALLER_RATE_LIMIT), or off. A caller can get up to maximumInstanceCount times this across instances: size it for what one user of your app asks for (docs/security.md).')
param callerRateLimit string = '5'

@description('Requests a signed-in caller may make at once, per instance (CALLER_RATE_BURST).')
@minValue(1)
@maxValue(10000)
param callerRateBurst int = 30

@description('Most instances the app scales out to.')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

var authenticated = authMode != 'none'
// A deployment that would answer 401 to every call fails here instead, with a reason. The
// all-zero id is main.parameters.json's placeholder, not an app registration.
var clientId = !authenticated || (!empty(entraClientId) && entraClientId != '00000000-0000-0000-0000-000000000000')
  ? entraClientId
  : fail('authMode ${authMode} needs entraClientId: the client id of the app registration that signs users in (easyauth) or of the token service API (entra), not the all-zero placeholder.')
var audiences = empty(entraAudience) ? 'api://${clientId},${clientId}' : entraAudience
// The handler refuses entra without either (any app of the tenant could call it): fail early.
var requiredScope = authMode != 'entra' || !empty(entraRequiredScope) || !empty(allowedClientApplications)
  ? entraRequiredScope
  : fail('authMode entra needs entraRequiredScope (e.g. Token.Issue) or allowedClientApplications, or both.')
// The handler refuses members without signed-in callers (anyone could claim to be a member).
var access = documentAccess != 'members' || authenticated
  ? documentAccess
  : fail('documentAccess members needs authMode easyauth or entra.')
// The handler refuses two ACS connections at startup: refuse them here, before deploying.
var acsName = empty(acsResourceName) || empty(acsConnectionStringSecretName)
  ? acsResourceName
  : fail('Set acsResourceName or acsConnectionStringSecretName, not both.')
// The handler refuses every origin with real keys and no authentication: any web page a user
// visits could get tokens.
var origins = authenticated || !contains(allowedOrigins, '*')
  ? allowedOrigins
  : fail('allowedOrigins * with authMode none would let any web page get tokens signed with the real keys: name the origins of your app.')
var handlerCors = corsMode == 'handler' && !empty(origins)

var suffix = uniqueString(resourceGroup().id, namePrefix)
var appName = '${namePrefix}-tokens-${suffix}'
var storageName = toLower('${namePrefix}${take(suffix, 12)}')
var vaultName = '${namePrefix}-kv-${take(uniqueString(resourceGroup().id, namePrefix, vaultNameSuffix), 8)}'
var deploymentContainer = 'app-package'
// Built-in roles.
var keyVaultSecretsUser = '4633458b-17de-408a-b874-0445c86b69e6' // read secret values
var storageBlobDataOwner = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b' // host storage and the deployment package
var storageTableDataContributor = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3' // ACS identity bindings, document members
var contributor = 'b24988ac-6180-42a0-ab88-20f7382dd24c' // ACS Identity API with Entra ID, as the ACS docs assign
var monitoringMetricsPublisher = '3913510d-42f4-4e42-8a64-420c390055eb' // keyless Application Insights

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: storageName
  location: location
  kind: 'StorageV2'
  sku: { name: 'Standard_LRS' }
  properties: {
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource packages 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainer
}

resource logs 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: '${namePrefix}-logs-${suffix}'
  location: location
  properties: {
    sku: { name: 'PerGB2018' }
    retentionInDays: 30
  }
}

resource insights 'Microsoft.Insights/components@2020-02-02' = {
  name: '${namePrefix}-ai-${suffix}'
  location: location
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logs.id
    // Telemetry only with the app's identity (APPLICATIONINSIGHTS_AUTHENTICATION_STRING).
    DisableLocalAuth: true
  }
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: vaultName
  location: location
  properties: {
    tenantId: subscription().tenantId
    sku: { family: 'A', name: 'standard' }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    publicNetworkAccess: 'Enabled'
  }
}

// ARM validates the name of a conditional resource even when its condition is false: an empty
// name would fail every deployment without ACS, so it gets a placeholder it never uses.
resource acs 'Microsoft.Communication/communicationServices@2023-04-01' existing = if (!empty(acsName)) {
  name: empty(acsName) ? 'no-acs-resource' : acsName
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: '${namePrefix}-plan-${suffix}'
  location: location
  kind: 'functionapp'
  sku: { tier: 'FlexConsumption', name: 'FC1' }
  properties: { reserved: true }
}

var appSettings = concat([
  // Identity-based host storage: no account key anywhere.
  { name: 'AzureWebJobsStorage__accountName', value: storage.name }
  { name: 'APPLICATIONINSIGHTS_CONNECTION_STRING', value: insights.properties.ConnectionString }
  { name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING', value: 'Authorization=AAD' }
  { name: 'AUTH_MODE', value: authMode }
  { name: 'KEY_VAULT_URL', value: vault.properties.vaultUri }
  { name: 'KEY_VAULT_CREDENTIAL', value: 'managed-identity' }
  { name: 'TOKEN_MAX_LIFETIME_SECONDS', value: string(maxTokenLifetimeSeconds) }
  { name: 'ALLOWED_TENANTS', value: allowedTenants }
  { name: 'KEY_VAULT_PRELOAD_TENANTS', value: preloadTenants }
  // Key Vault serves ~400 reads/s to all its clients together: keep every instance's miss
  // budget, times the instance count, under 300/s.
  { name: 'KEY_VAULT_MISS_RATE', value: string(max(1, 300 / maximumInstanceCount)) }
  // Document owners and members, in a table of the app's storage (shared by every instance).
  { name: 'DOCUMENT_ACCESS', value: access }
  { name: 'DOCUMENT_STORE', value: 'table' }
  // Table Storage serves an account 20,000 requests/s, shared with the Functions host: keep the
  // member-store reads callers can cause (misses), times the instance count, under 2,000/s.
  { name: 'DOCUMENT_STORE_MISS_RATE', value: string(max(1, 2000 / maximumInstanceCount)) }
  // Fair use per caller, per instance.
  { name: 'CALLER_RATE_LIMIT', value: callerRateLimit }
  { name: 'CALLER_RATE_BURST', value: string(callerRateBurst) }
], authMode == 'entra' ? [
  { name: 'ENTRA_AUTHORITY', value: environment().authentication.loginEndpoint }
  { name: 'ENTRA_TENANT_ID', value: entraTenantId }
  { name: 'ENTRA_AUDIENCE', value: audiences }
  { name: 'ENTRA_REQUIRED_SCOPE', value: requiredScope }
  { name: 'ENTRA_ALLOWED_CLIENT_APPS', value: join(allowedClientApplications, ',') }
] : [], handlerCors ? [
  { name: 'CORS_ALLOWED_ORIGINS', value: join(origins, ',') }
  { name: 'CORS_ALLOW_CREDENTIALS', value: string(corsSupportCredentials) }
] : [], empty(acsName) ? [] : [
  { name: 'ACS_ENDPOINT', value: 'https://${acs!.properties.hostName}' }
], empty(acsConnectionStringSecretName) ? [] : [
  { name: 'ACS_CONNECTION_STRING_SECRET_NAME', value: acsConnectionStringSecretName }
])

resource app 'Microsoft.Web/sites@2024-04-01' = {
  name: appName
  location: location
  kind: 'functionapp,linux'
  identity: { type: 'SystemAssigned' }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainer}'
          authentication: { type: 'SystemAssignedIdentity' }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: 512
      }
      runtime: { name: 'custom', version: '1.0' }
    }
    siteConfig: {
      minTlsVersion: '1.2'
      // corsMode platform: the platform answers preflights (OPTIONS) before Easy Auth sees them.
      // corsMode handler: the list stays empty, so only the handler answers (one header).
      cors: {
        allowedOrigins: corsMode == 'platform' ? origins : []
        supportCredentials: corsMode == 'platform' && corsSupportCredentials
      }
      appSettings: appSettings
    }
  }
}

resource vaultReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, app.id, keyVaultSecretsUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUser)
    principalId: app.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

resource storageOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, app.id, storageBlobDataOwner)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataOwner)
    principalId: app.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

// Table Storage: document members (DOCUMENT_STORE=table) and ACS identity bindings.
resource tableWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, app.id, storageTableDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageTableDataContributor)
    principalId: app.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

resource acsCaller 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(acsName)) {
  name: guid(acsName, app.id, contributor)
  scope: acs
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', contributor)
    principalId: app.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

resource telemetryWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(insights.id, app.id, monitoringMetricsPublisher)
  scope: insights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisher)
    principalId: app.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

// App Service Authentication with Entra ID; the handler reads the principal it passes on, and
// the platform strips principal headers that callers send. With corsMode handler, a preflight
// (which carries no credentials) must reach the handler, so unauthenticated requests are let
// through — and the handler refuses every one without a principal (401). With corsMode platform,
// the platform answers preflights and refuses unauthenticated requests itself.
resource authentication 'Microsoft.Web/sites/config@2024-04-01' = if (authMode == 'easyauth') {
  parent: app
  name: 'authsettingsV2'
  properties: {
    platform: { enabled: true }
    globalValidation: {
      requireAuthentication: corsMode == 'platform'
      unauthenticatedClientAction: corsMode == 'platform' ? 'Return401' : 'AllowAnonymous'
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          clientId: clientId
          openIdIssuer: '${environment().authentication.loginEndpoint}${entraTenantId}/v2.0'
        }
        validation: {
          allowedAudiences: [ 'api://${clientId}', clientId ]
          defaultAuthorizationPolicy: {
            allowedApplications: allowedClientApplications
          }
        }
      }
    }
    login: { tokenStore: { enabled: false } }
  }
}

output functionAppName string = app.name
output functionUrl string = 'https://${app.properties.defaultHostName}/api/TokenFunction'
output keyVaultName string = vault.name
output entraClientId string = clientId
