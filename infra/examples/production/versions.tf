terraform {
  required_version = ">= 1.6"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.0"
    }
    cloudflare = {
      source  = "cloudflare/cloudflare"
      version = "~> 5.14"
    }
  }

  # Keep the state in an encrypted, versioned S3 bucket of the account (create it once by hand).
  # The state holds no secret value unless edge_secret_values is set for a Worker deployment.
  #
  # backend "s3" {
  #   bucket       = "example-terraform-state"
  #   key          = "knowedge/production.tfstate"
  #   region       = "eu-west-1"
  #   encrypt      = true
  #   kms_key_id   = "alias/terraform-state"
  #   use_lockfile = true
  # }
}

provider "aws" {
  region = var.aws_region

  default_tags {
    tags = {
      project     = "knowedge"
      environment = "production"
    }
  }
}

# The Cloudflare token comes from the CLOUDFLARE_API_TOKEN environment variable. It needs
# Workers Scripts, Workers KV Storage and Workers Routes edit permissions (and Zone DNS edit for
# a custom domain).
provider "cloudflare" {}
