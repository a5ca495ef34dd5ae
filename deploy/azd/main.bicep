// The entry point of `azd up` (azure.yaml: infra.path deploy/azd): deploy/main.bicep with its
// parameters taken from the azd environment — `azd env set AUTH_MODE easyauth`,
// `azd env set ENTRA_CLIENT_ID <id>`, `azd env set ALLOWED_ORIGINS https://app.contoso.com`, …
// (see main.parameters.json). Lists are comma-separated strings here, as environment values are.

@description('The azd environment name; the resource names are derived from it.')
@minLength(3)
param environmentName string

param location string = resourceGroup().location

@allowed(['easyauth', 'entra', 'none'])
param authMode string = 'entra'

param entraClientId string = ''

param entraRequiredScope string = ''

@description('Comma-separated client application ids.')
param allowedClientApplications string = ''

@description('Comma-separated browser origins.')
param allowedOrigins string = ''

@allowed(['handler', 'platform'])
param corsMode string = 'handler'

param vaultNameSuffix string = ''

param acsResourceName string = ''

@allowed(['open', 'members'])
param documentAccess string = 'open'

var list = {
  origins: empty(allowedOrigins) ? [] : map(split(allowedOrigins, ','), o => trim(o))
  clients: empty(allowedClientApplications) ? [] : map(split(allowedClientApplications, ','), c => trim(c))
}

// Resource names come from the environment name, which azd allows to hold letters in either
// case, digits, '-', '_', '.', '(' and ')'; storage account and vault names take lowercase
// letters and digits and must start with a letter: keep those, put a letter first when needed,
// and keep main.bicep's bounds (3 to 11 characters).
var cleanName = toLower(replace(replace(replace(replace(replace(environmentName, '-', ''), '_', ''), '.', ''), '(', ''), ')', ''))
var letterFirst = !empty(cleanName) && contains('abcdefghijklmnopqrstuvwxyz', take(cleanName, 1)) ? cleanName : 'f${cleanName}'
var namePrefix = take(length(letterFirst) < 3 ? '${letterFirst}tok' : letterFirst, 11)

module service '../main.bicep' = {
  name: 'fluid-token-service'
  params: {
    namePrefix: namePrefix
    location: location
    authMode: authMode
    entraClientId: entraClientId
    entraRequiredScope: entraRequiredScope
    allowedClientApplications: list.clients
    allowedOrigins: list.origins
    corsMode: corsMode
    vaultNameSuffix: vaultNameSuffix
    acsResourceName: acsResourceName
    documentAccess: documentAccess
  }
}

// azd keeps outputs as environment values: the postprovision hook deploys the package with them.
output AZURE_FUNCTION_APP_NAME string = service.outputs.functionAppName
output AZURE_KEY_VAULT_NAME string = service.outputs.keyVaultName
output FUNCTION_URL string = service.outputs.functionUrl
output AUTH_MODE string = authMode
