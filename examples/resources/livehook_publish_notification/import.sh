# The import ID is the push domain.
terraform import livehook_publish_notification.push push.example.com
