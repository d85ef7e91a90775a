from cloud_hub.cli import main

main()
