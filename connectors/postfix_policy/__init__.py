"""The Postfix SMTP access policy delegation protocol: requests in, enforcement replies out."""
