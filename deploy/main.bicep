// The Fluid token service on Azure Functions Flex Consumption: the function app (custom handler
// runtime, system-assigned identity), its storage, Application Insights, and a Key Vault (RBAC)
// whose secrets the app's identity may read. Optionally App Service Authentication with Entra ID
// for AUTH_MODE=easyauth.

@description('Prefix of every resource name (letters and digits, 3-11 characters).')
@minLength(3)
@maxLength(11)
param namePrefix string

param location string = resourceGroup().location

@description('Caller authentication: easyauth (App Service Authentication), entra (access tokens), or none (development only).')
@allowed(['easyauth', 'entra', 'none'])
param authMode string = 'easyauth'

@description('Entra ID tenant of the users (easyauth and entra).')
param entraTenantId string = tenant().tenantId

@description('Client id of the app registration that signs users in (easyauth) or the API audience (entra).')
param entraClientId string = ''

@description('entra: accepted audiences, comma-separated (App ID URI and/or client id).')
param entraAudience string = ''

@description('entra: required delegated scope or app role, e.g. Token.Issue.')
param entraRequiredScope string = ''

@description('Azure Fluid Relay tenant ids tokens may be issued for, comma-separated (empty: any with a key).')
param allowedTenants string = ''

@description('Tenant ids whose keys are read at startup, comma-separated.')
param preloadTenants string = ''

@description('Longest token lifetime in seconds (at most 3600).')
@minValue(1)
@maxValue(3600)
param maxTokenLifetimeSeconds int = 3600

@description('Name of the Key Vault secret holding the ACS connection string (empty: no ACS function).')
param acsConnectionStringSecretName string = ''

var suffix = uniqueString(resourceGroup().id, namePrefix)
var appName = '${namePrefix}-tokens-${suffix}'
var storageName = toLower('${namePrefix}${take(suffix, 12)}')
var vaultName = '${namePrefix}-kv-${take(suffix, 8)}'
var deploymentContainer = 'app-package'
// Built-in role: Key Vault Secrets User (read secret values).
var keyVaultSecretsUser = '4633458b-17de-408a-b874-0445c86b69e6'
// Built-in role: Storage Blob Data Owner (deployment package container).
var storageBlobDataOwner = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: storageName
  location: location
  kind: 'StorageV2'
  sku: { name: 'Standard_LRS' }
  properties: {
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    allowBlobPublicAccess: false
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

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: '${namePrefix}-plan-${suffix}'
  location: location
  kind: 'functionapp'
  sku: { tier: 'FlexConsumption', name: 'FC1' }
  properties: { reserved: true }
}

var storageConnection = 'DefaultEndpointsProtocol=https;AccountName=${storage.name};AccountKey=${storage.listKeys().keys[0].value};EndpointSuffix=${environment().suffixes.storage}'

var appSettings = concat([
  { name: 'AzureWebJobsStorage', value: storageConnection }
  { name: 'APPLICATIONINSIGHTS_CONNECTION_STRING', value: insights.properties.ConnectionString }
  { name: 'AUTH_MODE', value: authMode }
  { name: 'KEY_VAULT_URL', value: vault.properties.vaultUri }
  { name: 'KEY_VAULT_CREDENTIAL', value: 'managed-identity' }
  { name: 'TOKEN_MAX_LIFETIME_SECONDS', value: string(maxTokenLifetimeSeconds) }
  { name: 'ALLOWED_TENANTS', value: allowedTenants }
  { name: 'KEY_VAULT_PRELOAD_TENANTS', value: preloadTenants }
], authMode == 'entra' ? [
  { name: 'ENTRA_TENANT_ID', value: entraTenantId }
  { name: 'ENTRA_AUDIENCE', value: entraAudience }
  { name: 'ENTRA_REQUIRED_SCOPE', value: entraRequiredScope }
] : [], empty(acsConnectionStringSecretName) ? [] : [
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
        maximumInstanceCount: 40
        instanceMemoryMB: 512
      }
      runtime: { name: 'custom', version: '1.0' }
    }
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
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

resource packageReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, app.id, storageBlobDataOwner)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataOwner)
    principalId: app.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

// App Service Authentication with Entra ID: users must sign in; the handler reads the principal.
resource authentication 'Microsoft.Web/sites/config@2024-04-01' = if (authMode == 'easyauth') {
  parent: app
  name: 'authsettingsV2'
  properties: {
    platform: { enabled: true }
    globalValidation: {
      requireAuthentication: true
      unauthenticatedClientAction: 'Return401'
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          clientId: entraClientId
          openIdIssuer: '${environment().authentication.loginEndpoint}${entraTenantId}/v2.0'
        }
        validation: {
          allowedAudiences: [ 'api://${entraClientId}', entraClientId ]
        }
      }
    }
    login: { tokenStore: { enabled: false } }
  }
}

output functionAppName string = app.name
output functionUrl string = 'https://${app.properties.defaultHostName}/api/TokenFunction'
output keyVaultName string = vault.name
